// Package gendump writes deterministic, synthetic dumps of the rates tables (regions, ports,
// prices) in the plain format of pg_dump --no-owner --no-privileges: the project's default
// dump db/seed/rates.sql, and dumps of millions of prices for benchmarks.
//
// The regions and ports are a fixed, hand-written geography (see Geography). The seed picks
// the routes and draws the prices: the same Options always give byte-identical output.
// Prices are streamed day by day, in constant memory whatever their number.
package gendump

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Defaults of Options.
const (
	DefaultSeed   = 1
	DefaultPrices = 50_000
	DefaultDays   = 31
)

// DefaultStart is the first day of the default dump.
var DefaultStart = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// MaxDays bounds Options.Days.
const MaxDays = 3660

// Options choose the dump to write.
type Options struct {
	// Seed drives every random choice: routes, volumes and prices, and the \restrict key.
	Seed uint64
	// Prices is the exact number of rows of the prices table; 0 means DefaultPrices. More
	// prices mean more routes and more prices per route and day, over the same days.
	Prices int
	// Start is the first day of prices (its calendar date is used); zero means DefaultStart.
	Start time.Time
	// Days is the number of consecutive days with prices; 0 means DefaultDays.
	Days int
}

// DefaultOptions are the options of the project's default dump, db/seed/rates.sql.
func DefaultOptions() Options {
	return Options{Seed: DefaultSeed, Prices: DefaultPrices, Start: DefaultStart, Days: DefaultDays}
}

// Stats describe a written dump.
type Stats struct {
	Regions int64 // rows of regions
	Ports   int64 // rows of ports
	Prices  int64 // rows of prices
	Routes  int   // origin→destination pairs with prices
	// RouteDays is Routes × Days; of them, RouteDaysEmpty have no price and RouteDaysSparse
	// have one or two (too few for an average).
	RouteDays       int
	RouteDaysEmpty  int
	RouteDaysSparse int
	// MaxRouteDay is the largest number of prices of one route on one day.
	MaxRouteDay int
	Bytes       int64 // size of the dump
}

// The version the dump claims to come from: its header is what pg_dump 15.18 writes.
const pgVersion = "15.18"

func (o Options) normalize() (Options, error) {
	if o.Prices == 0 {
		o.Prices = DefaultPrices
	}
	if o.Days == 0 {
		o.Days = DefaultDays
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	switch {
	case o.Prices < 0:
		return o, fmt.Errorf("gendump: prices must be positive, got %d", o.Prices)
	case o.Days < 0 || o.Days > MaxDays:
		return o, fmt.Errorf("gendump: days must be between 1 and %d, got %d", MaxDays, o.Days)
	}
	y, m, d := o.Start.Date()
	o.Start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return o, nil
}

// Streams of the PCG generator, one per independent use of the seed.
const (
	streamData = 0x7261746573646174 // "ratesdat"
	streamKey  = 0x726174657363656b // "ratescek"
)

// restrictKey is the key of the \restrict and \unrestrict commands: 63 letters and digits,
// like pg_dump's, but drawn from the seed.
func restrictKey(seed uint64) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	rng := rand.New(rand.NewPCG(seed, streamKey))
	key := make([]byte, 63)
	for i := range key {
		key[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(key)
}

// Write writes the dump that opts describe to w.
func Write(w io.Writer, opts Options) (Stats, error) {
	opts, err := opts.normalize()
	if err != nil {
		return Stats{}, err
	}
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	st, err := writeDump(bw, opts)
	if err == nil {
		err = bw.Flush()
	}
	st.Bytes = cw.n
	if err != nil {
		return st, fmt.Errorf("gendump: write: %w", err)
	}
	return st, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeDump(bw *bufio.Writer, opts Options) (Stats, error) {
	var st Stats
	gen := newPriceGen(opts)
	key := restrictKey(opts.Seed)

	if _, err := bw.WriteString("--\n-- PostgreSQL database dump\n--\n\n\\restrict " + key + "\n\n" +
		"-- Dumped from database version " + pgVersion + "\n" +
		"-- Dumped by pg_dump version " + pgVersion + "\n" + preamble + tablesDDL); err != nil {
		return st, err
	}

	if _, err := bw.WriteString(dataComment("ports") + "COPY public.ports (code, name, parent_slug) FROM stdin;\n"); err != nil {
		return st, err
	}
	var row []byte
	for _, p := range ports {
		row = appendCopyText(row[:0], p.Code)
		row = append(row, '\t')
		row = appendCopyText(row, p.Name)
		row = append(row, '\t')
		row = appendCopyText(row, p.Region)
		row = append(row, '\n')
		if _, err := bw.Write(row); err != nil {
			return st, err
		}
		st.Ports++
	}
	if _, err := bw.WriteString(endOfCopy); err != nil {
		return st, err
	}

	if _, err := bw.WriteString(dataComment("prices") + "COPY public.prices (orig_code, dest_code, day, price) FROM stdin;\n"); err != nil {
		return st, err
	}
	if err := gen.write(bw, &st); err != nil {
		return st, err
	}
	if _, err := bw.WriteString(endOfCopy); err != nil {
		return st, err
	}

	if _, err := bw.WriteString(dataComment("regions") + "COPY public.regions (slug, name, parent_slug) FROM stdin;\n"); err != nil {
		return st, err
	}
	for _, r := range regions {
		row = appendCopyText(row[:0], r.Slug)
		row = append(row, '\t')
		row = appendCopyText(row, r.Name)
		row = append(row, '\t')
		if r.Parent == "" {
			row = append(row, nullField...)
		} else {
			row = appendCopyText(row, r.Parent)
		}
		row = append(row, '\n')
		if _, err := bw.Write(row); err != nil {
			return st, err
		}
		st.Regions++
	}
	if _, err := bw.WriteString(endOfCopy); err != nil {
		return st, err
	}

	_, err := bw.WriteString(constraintsDDL + "--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict " + key + "\n\n")
	return st, err
}

func dataComment(table string) string {
	return "--\n-- Data for Name: " + table + "; Type: TABLE DATA; Schema: public; Owner: -\n--\n\n"
}

const endOfCopy = "\\.\n\n\n"

const preamble = `
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

`

const tablesDDL = `--
-- Name: ports; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ports (
    code text NOT NULL,
    name text NOT NULL,
    parent_slug text NOT NULL
);


--
-- Name: prices; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.prices (
    orig_code text NOT NULL,
    dest_code text NOT NULL,
    day date NOT NULL,
    price integer NOT NULL
);


--
-- Name: regions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.regions (
    slug text NOT NULL,
    name text NOT NULL,
    parent_slug text
);


`

const constraintsDDL = `--
-- Name: ports ports_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ports
    ADD CONSTRAINT ports_pkey PRIMARY KEY (code);


--
-- Name: regions regions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.regions
    ADD CONSTRAINT regions_pkey PRIMARY KEY (slug);


--
-- Name: ports ports_parent_slug_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ports
    ADD CONSTRAINT ports_parent_slug_fkey FOREIGN KEY (parent_slug) REFERENCES public.regions(slug);


--
-- Name: prices prices_dest_code_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.prices
    ADD CONSTRAINT prices_dest_code_fkey FOREIGN KEY (dest_code) REFERENCES public.ports(code);


--
-- Name: prices prices_orig_code_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.prices
    ADD CONSTRAINT prices_orig_code_fkey FOREIGN KEY (orig_code) REFERENCES public.ports(code);


--
-- Name: regions regions_parent_slug_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.regions
    ADD CONSTRAINT regions_parent_slug_fkey FOREIGN KEY (parent_slug) REFERENCES public.regions(slug);


`
