// A map page with nothing live: its layer control and the legends that follow its layers.
gw.setUp(gw.pageData());
