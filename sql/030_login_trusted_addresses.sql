-- An account's lock does not hold for an address it logged in from lately (api/auth/service.py):
-- each login while locked asks whether this name succeeded from this address.
CREATE INDEX login_attempt_ok_idx ON login_attempt (username, client_ip, at DESC) WHERE succeeded;
