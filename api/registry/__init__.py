"""The registry a bureau keeps itself: schools, devices, communities and users, their history,
the administration API and the spreadsheet import."""
