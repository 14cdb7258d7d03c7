"""智能巡课 through the API: the wall of classrooms in session, stills behind signed links, inspection records."""
