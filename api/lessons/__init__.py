"""The three classrooms (三个课堂): timetable, sessions matched to what was streamed, figures."""
