-- A school's city and province are its county's, and a county's province is its city's: the
-- figures of a province or a city read the counties' running totals (023), which place a county
-- by county.city_code, while the per-school figures place a school by school.city_code. The
-- schema said nothing, so a school could sit in one city's county and another city's list.
-- Moving a county to another city carries its schools along.

ALTER TABLE city ADD CONSTRAINT city_code_province UNIQUE (code, province_code);
ALTER TABLE county ADD CONSTRAINT county_code_city_province UNIQUE (code, city_code, province_code);
ALTER TABLE county ADD CONSTRAINT county_in_its_city FOREIGN KEY (city_code, province_code)
    REFERENCES city (code, province_code) ON UPDATE CASCADE;
ALTER TABLE school ADD CONSTRAINT school_in_its_county FOREIGN KEY (county_code, city_code, province_code)
    REFERENCES county (code, city_code, province_code) ON UPDATE CASCADE;
