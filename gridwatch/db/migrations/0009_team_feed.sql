-- Teams and the worked queue on the live feed. A change of a team's status (dispatch makes
-- it busy, clearing its last assignment available, off duty) and each new position ping are
-- announced with the team's id, so every open command room redraws its marker. Identical
-- notifications in one transaction are delivered once, so a batch of pings is one announcement.
CREATE FUNCTION notify_team() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('team', NEW.id::text);
    RETURN NULL;
END $$;

CREATE FUNCTION notify_team_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('team', NEW.team_id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER teams_status_changed AFTER UPDATE OF status ON teams FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION notify_team();
CREATE TRIGGER team_positions_added AFTER INSERT ON team_positions FOR EACH ROW
    EXECUTE FUNCTION notify_team_position();

-- The unassigned queue worked by hand (an alert placed in a grid or dismissed) is announced
-- like a new arrival, so every command room takes it off its queue.
CREATE TRIGGER alerts_queue_worked AFTER UPDATE OF queue_action ON alerts FOR EACH ROW
    WHEN (NEW.queue_action IS NOT NULL) EXECUTE FUNCTION notify_unassigned();
