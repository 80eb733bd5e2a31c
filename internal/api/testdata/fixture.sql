--
-- A small dump in pg_dump's plain format for the API tests: a region tree three levels deep,
-- a region without ports, and route-days with 0, 1, 2, 3 and 4 prices.
--

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

COPY public.regions (slug, name, parent_slug) FROM stdin;
world	World	\N
europe	Europe	world
north_europe	North Europe	europe
baltic	Baltic	north_europe
asia	Asia	world
china	China	asia
empty_region	Empty Region	world
\.

COPY public.ports (code, name, parent_slug) FROM stdin;
CNAAA	Alpha	china
CNBBB	Beta	china
EEAAA	Tallinn	baltic
DEAAA	Hamburg	north_europe
NLAAA	Rotterdam	europe
\.

COPY public.prices (orig_code, dest_code, day, price) FROM stdin;
CNAAA	DEAAA	2021-01-01	1000
CNAAA	DEAAA	2021-01-01	1100
CNAAA	DEAAA	2021-01-01	1363
CNAAA	DEAAA	2021-01-02	1000
CNAAA	DEAAA	2021-01-02	1100
CNAAA	DEAAA	2021-01-04	1200
CNAAA	DEAAA	2021-01-04	1100
CNAAA	DEAAA	2021-01-04	1155
CNAAA	DEAAA	2021-01-04	1165
CNAAA	DEAAA	2021-01-05	999
CNBBB	EEAAA	2021-01-01	2000
CNBBB	EEAAA	2021-01-01	2000
CNBBB	NLAAA	2021-01-01	3000
\.
