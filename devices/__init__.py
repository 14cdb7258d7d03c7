"""Simulated classroom devices: touch boards, recording classrooms and school gateways."""
