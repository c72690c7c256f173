-- An alert outside every grid is announced, for the live feed: the command room shows the
-- unassigned queue as it grows. A row trigger with a WHEN clause fires only for those rows;
-- the alerts that found a grid (nearly all) cost one comparison each.
CREATE FUNCTION notify_unassigned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('unassigned', NEW.id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER alerts_unassigned AFTER INSERT ON alerts FOR EACH ROW WHEN (NEW.grid_code IS NULL)
    EXECUTE FUNCTION notify_unassigned();
