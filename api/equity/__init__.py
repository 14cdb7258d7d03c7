"""Equity (优质均衡): how evenly each county's schools get and use classroom technology."""
