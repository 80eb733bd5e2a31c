package gendump

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// generate writes the dump of opts to memory.
func generate(t *testing.T, opts Options) ([]byte, Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := Write(&buf, opts)
	if err != nil {
		t.Fatalf("Write(%+v): %v", opts, err)
	}
	if st.Bytes != int64(buf.Len()) {
		t.Errorf("Stats.Bytes = %d, wrote %d bytes", st.Bytes, buf.Len())
	}
	return buf.Bytes(), st
}

var (
	defaultOnce  sync.Once
	defaultDump  []byte
	defaultStats Stats
	defaultErr   error
)

// defaultOutput is the dump of DefaultOptions, generated once for all tests.
func defaultOutput(t *testing.T) ([]byte, Stats) {
	t.Helper()
	defaultOnce.Do(func() {
		var buf bytes.Buffer
		defaultStats, defaultErr = Write(&buf, DefaultOptions())
		defaultDump = buf.Bytes()
	})
	if defaultErr != nil {
		t.Fatalf("Write(DefaultOptions()): %v", defaultErr)
	}
	return defaultDump, defaultStats
}

// parsedDump is the content of the COPY blocks of a dump, fields unescaped; a NULL is nil.
type parsedDump map[string][][]*string

func parseDump(t *testing.T, data []byte) parsedDump {
	t.Helper()
	copyRE := regexp.MustCompile(`^COPY public\.(\w+) \(([a-z_, ]+)\) FROM stdin;$`)
	out := parsedDump{}
	table := ""
	for i, line := range strings.Split(string(data), "\n") {
		if table == "" {
			if m := copyRE.FindStringSubmatch(line); m != nil {
				table = m[1]
				out[table] = [][]*string{}
			}
			continue
		}
		if line == `\.` {
			table = ""
			continue
		}
		var row []*string
		for _, f := range strings.Split(line, "\t") {
			if f == nullField {
				row = append(row, nil)
				continue
			}
			v, err := unescapeCopyText(f)
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			row = append(row, &v)
		}
		out[table] = append(out[table], row)
	}
	if table != "" {
		t.Fatalf("COPY block of %s has no end marker", table)
	}
	return out
}

func unescapeCopyText(f string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '\\' {
			b.WriteByte(f[i])
			continue
		}
		if i++; i == len(f) {
			return "", fmt.Errorf("field %q ends in a backslash", f)
		}
		c, ok := map[byte]byte{'\\': '\\', 't': '\t', 'n': '\n', 'r': '\r', 'b': '\b', 'f': '\f', 'v': '\v'}[f[i]]
		if !ok {
			return "", fmt.Errorf("field %q: unexpected escape \\%c", f, f[i])
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

func TestAppendCopyText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Rotterdam", "Rotterdam"},
		{"empty", "", ""},
		{"utf8", "Göteborg / São Francisco do Sul", "Göteborg / São Francisco do Sul"},
		{"tab", "a\tb", `a\tb`},
		{"backslash", `a\b`, `a\\b`},
		{"newline", "a\nb", `a\nb`},
		{"carriage return", "a\r\nb", `a\r\nb`},
		{"other control escapes", "\b\f\v", `\b\f\v`},
		{"control without escape", "a\x01b\x7f", "a\x01b\x7f"},
		{"not a null", `\N`, `\\N`},
		{"all at once", "Port\\Name\twith\nlines", `Port\\Name\twith\nlines`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendCopyText([]byte("x"), tt.in))
			if got != "x"+tt.want {
				t.Errorf("appendCopyText(%q) = %q, want %q", tt.in, got[1:], tt.want)
			}
			if strings.ContainsAny(got, "\t\n\r") {
				t.Errorf("appendCopyText(%q) = %q keeps a delimiter or line end", tt.in, got[1:])
			}
			if back, err := unescapeCopyText(got[1:]); err != nil || back != tt.in {
				t.Errorf("unescape(appendCopyText(%q)) = %q, %v", tt.in, back, err)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"default", DefaultOptions()},
		{"zero value means defaults", Options{Seed: DefaultSeed}},
		{"short range", Options{Seed: 7, Prices: 1234, Start: time.Date(2025, 2, 20, 15, 4, 5, 0, time.UTC), Days: 10}},
		{"one price", Options{Seed: 3, Prices: 1, Days: 1}},
		{"dense", Options{Seed: 42, Prices: 200_000, Days: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, sa := generate(t, tt.opts)
			b, sb := generate(t, tt.opts)
			if !bytes.Equal(a, b) || sa != sb {
				t.Fatal("two runs with the same options differ")
			}
			other := tt.opts
			other.Seed++
			c, _ := generate(t, other)
			if bytes.Equal(a, c) {
				t.Fatal("seeds", tt.opts.Seed, "and", other.Seed, "give the same dump")
			}
			want := int64(tt.opts.Prices)
			if want == 0 {
				want = DefaultPrices
			}
			if sa.Prices != want {
				t.Errorf("Stats.Prices = %d, want exactly %d", sa.Prices, want)
			}
		})
	}
	// The zero Options are the default dump but for the seed.
	def, _ := defaultOutput(t)
	if zero, _ := generate(t, Options{Seed: DefaultSeed}); !bytes.Equal(zero, def) {
		t.Error("Options{Seed: DefaultSeed} differs from DefaultOptions()")
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, opts := range []Options{{Prices: -1}, {Days: -1}, {Days: MaxDays + 1}} {
		if _, err := Write(io.Discard, opts); err == nil {
			t.Errorf("Write(%+v) accepted invalid options", opts)
		}
	}
}

func TestFraming(t *testing.T) {
	keyRE := regexp.MustCompile(`^[A-Za-z0-9]{63}$`)
	keys := map[string]uint64{}
	for _, seed := range []uint64{0, 1, 2, 1 << 63} {
		data, _ := generate(t, Options{Seed: seed, Prices: 100})
		text := string(data)
		head, rest, ok := strings.Cut(text, "\\restrict ")
		if !ok || head != "--\n-- PostgreSQL database dump\n--\n\n" {
			t.Fatalf("seed %d: dump does not start with pg_dump's header and \\restrict", seed)
		}
		key, _, _ := strings.Cut(rest, "\n")
		if !keyRE.MatchString(key) {
			t.Errorf("seed %d: \\restrict key %q is not 63 letters and digits", seed, key)
		}
		if prev, dup := keys[key]; dup {
			t.Errorf("seeds %d and %d have the same key", prev, seed)
		}
		keys[key] = seed
		if want := "\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict " + key + "\n\n"; !strings.HasSuffix(text, want) {
			t.Errorf("seed %d: dump does not end with %q", seed, want)
		}
		// pg_dump's order: tables, then data (alphabetical), then keys, then foreign keys.
		order := []string{
			"CREATE TABLE public.ports (", "CREATE TABLE public.prices (", "CREATE TABLE public.regions (",
			"COPY public.ports (code, name, parent_slug) FROM stdin;",
			"COPY public.prices (orig_code, dest_code, day, price) FROM stdin;",
			"COPY public.regions (slug, name, parent_slug) FROM stdin;",
			"ADD CONSTRAINT ports_pkey PRIMARY KEY (code);", "ADD CONSTRAINT regions_pkey PRIMARY KEY (slug);",
			"ADD CONSTRAINT ports_parent_slug_fkey FOREIGN KEY (parent_slug) REFERENCES public.regions(slug);",
			"ADD CONSTRAINT prices_dest_code_fkey FOREIGN KEY (dest_code) REFERENCES public.ports(code);",
			"ADD CONSTRAINT prices_orig_code_fkey FOREIGN KEY (orig_code) REFERENCES public.ports(code);",
			"ADD CONSTRAINT regions_parent_slug_fkey FOREIGN KEY (parent_slug) REFERENCES public.regions(slug);",
		}
		at := 0
		for _, s := range order {
			i := strings.Index(text[at:], s)
			if i < 0 {
				t.Fatalf("seed %d: %q missing or out of order", seed, s)
			}
			at += i + len(s)
		}
	}
}

func TestGeography(t *testing.T) {
	regs, prts := Geography()
	bySlug := map[string]Region{}
	for _, r := range regs {
		if _, dup := bySlug[r.Slug]; dup {
			t.Errorf("region %s listed twice", r.Slug)
		}
		bySlug[r.Slug] = r
		if r.Slug == "" || r.Name == "" {
			t.Errorf("region %+v has an empty slug or name", r)
		}
	}
	// depth walks up to the root; a cycle would take more steps than there are regions.
	depth := func(slug string) (int, error) {
		d := 0
		for r := bySlug[slug]; r.Parent != ""; r = bySlug[r.Parent] {
			if _, ok := bySlug[r.Parent]; !ok {
				return 0, fmt.Errorf("region %s: parent %s does not exist", r.Slug, r.Parent)
			}
			if d++; d > len(regs) {
				return 0, fmt.Errorf("region %s is in a cycle", slug)
			}
		}
		return d, nil
	}
	roots, maxDepth := 0, 0
	seen := map[string]bool{}
	for _, r := range regs {
		d, err := depth(r.Slug)
		if err != nil {
			t.Fatal(err)
		}
		if d == 0 {
			roots++
		}
		maxDepth = max(maxDepth, d)
		if r.Parent != "" && !seen[r.Parent] {
			t.Errorf("region %s comes before its parent %s", r.Slug, r.Parent)
		}
		seen[r.Slug] = true
	}
	if roots < 2 {
		t.Errorf("%d root regions, want at least 2", roots)
	}
	if maxDepth < 3 {
		t.Errorf("region tree is %d levels deep below a root, want at least 3", maxDepth)
	}

	codeRE := regexp.MustCompile(`^[A-Z]{5}$`)
	codes := map[string]bool{}
	withPorts := map[string]bool{} // regions with a port in their subtree
	hasChildren := map[string]bool{}
	for _, r := range regs {
		hasChildren[r.Parent] = true
	}
	innerPorts, nonASCII := 0, 0
	for _, p := range prts {
		if !codeRE.MatchString(p.Code) {
			t.Errorf("port code %q is not 5 upper-case letters", p.Code)
		}
		if codes[p.Code] {
			t.Errorf("port %s listed twice", p.Code)
		}
		codes[p.Code] = true
		if _, ok := bySlug[p.Region]; !ok {
			t.Errorf("port %s: region %q does not exist", p.Code, p.Region)
			continue
		}
		if !utf8.ValidString(p.Name) || p.Name == "" {
			t.Errorf("port %s: bad name %q", p.Code, p.Name)
		}
		if utf8.RuneCountInString(p.Name) != len(p.Name) {
			nonASCII++
		}
		if p.Size < 1 || p.Size > 10 {
			t.Errorf("port %s: size %d out of 1..10", p.Code, p.Size)
		}
		if hasChildren[p.Region] {
			innerPorts++
		}
		for r := bySlug[p.Region]; ; r = bySlug[r.Parent] {
			withPorts[r.Slug] = true
			if r.Parent == "" {
				break
			}
		}
	}
	if len(prts) < 100 {
		t.Errorf("%d ports, want about 150", len(prts))
	}
	if len(withPorts) == len(regs) {
		t.Error("every region has ports; want at least one without")
	}
	if innerPorts == 0 {
		t.Error("no port belongs to an inner region")
	}
	if nonASCII == 0 {
		t.Error("no port name outside ASCII")
	}
	for _, b := range BusyRoutes() {
		if !codes[b.Orig] || !codes[b.Dest] {
			t.Errorf("busy route %v has an unknown port", b)
		}
	}
}

// TestDefaultContent checks the rows of the default dump against the geography and Stats.
func TestDefaultContent(t *testing.T) {
	data, st := defaultOutput(t)
	d := parseDump(t, data)
	opts := DefaultOptions()

	counts := []struct {
		table string
		stat  int64
		cols  int
	}{{"regions", st.Regions, 3}, {"ports", st.Ports, 3}, {"prices", st.Prices, 4}}
	for _, c := range counts {
		if got := int64(len(d[c.table])); got != c.stat {
			t.Errorf("%s: %d rows, Stats say %d", c.table, got, c.stat)
		}
		for i, row := range d[c.table] {
			if len(row) != c.cols {
				t.Fatalf("%s row %d has %d fields, want %d", c.table, i+1, len(row), c.cols)
			}
		}
	}
	if st.Prices != DefaultPrices {
		t.Errorf("%d prices, want %d", st.Prices, DefaultPrices)
	}

	regionSet := map[string]bool{}
	for _, r := range d["regions"] {
		regionSet[*r[0]] = true
	}
	for _, r := range d["regions"] {
		if r[2] != nil && !regionSet[*r[2]] {
			t.Errorf("region %s: parent %s missing", *r[0], *r[2])
		}
	}
	portArea := map[string]string{}
	for _, p := range d["ports"] {
		if p[2] == nil || !regionSet[*p[2]] {
			t.Errorf("port %s: region missing", *p[0])
			continue
		}
		portArea[*p[0]] = area(*p[2])
	}

	first, last := opts.Start.Format(time.DateOnly), opts.Start.AddDate(0, 0, opts.Days-1).Format(time.DateOnly)
	routeDay := map[string]int{}
	routes := map[string]int{}
	interArea := 0
	for i, p := range d["prices"] {
		orig, dest, day := *p[0], *p[1], *p[2]
		if _, ok := portArea[orig]; !ok {
			t.Fatalf("price %d: origin %s is not a port", i+1, orig)
		}
		if _, ok := portArea[dest]; !ok {
			t.Fatalf("price %d: destination %s is not a port", i+1, dest)
		}
		if orig == dest {
			t.Fatalf("price %d: route %s→%s goes nowhere", i+1, orig, dest)
		}
		if _, err := time.Parse(time.DateOnly, day); err != nil || day < first || day > last {
			t.Fatalf("price %d: day %q outside %s..%s", i+1, day, first, last)
		}
		if v, err := strconv.Atoi(*p[3]); err != nil || v <= 0 || v > 1_000_000 {
			t.Fatalf("price %d: %q is not a positive integer price", i+1, *p[3])
		}
		key := orig + ">" + dest
		if routes[key] == 0 && portArea[orig] != portArea[dest] {
			interArea++
		}
		routes[key]++
		routeDay[key+" "+day]++
	}
	if len(routes) != st.Routes {
		t.Errorf("%d routes have prices, Stats say %d", len(routes), st.Routes)
	}
	if len(routes) < 200 || len(routes) > 500 {
		t.Errorf("%d routes, want a few hundred", len(routes))
	}
	if interArea*4 < len(routes)*3 {
		t.Errorf("only %d of %d routes join different areas", interArea, len(routes))
	}
	sparse, maxDay := 0, 0
	for _, n := range routeDay {
		if n < 3 {
			sparse++
		}
		maxDay = max(maxDay, n)
	}
	empty := len(routes)*opts.Days - len(routeDay)
	if sparse != st.RouteDaysSparse || empty != st.RouteDaysEmpty || maxDay != st.MaxRouteDay {
		t.Errorf("route-days: %d with 1-2 prices, %d empty, max %d; Stats say %d, %d, %d",
			sparse, empty, maxDay, st.RouteDaysSparse, st.RouteDaysEmpty, st.MaxRouteDay)
	}
	if sparse < 100 {
		t.Errorf("only %d route-days with 1-2 prices", sparse)
	}
	if empty < 100 {
		t.Errorf("only %d route-days without prices", empty)
	}
	busy := BusyRoutes()[0]
	top := ""
	for k, n := range routes {
		if top == "" || n > routes[top] || n == routes[top] && k < top {
			top = k
		}
	}
	if want := busy.Orig + ">" + busy.Dest; top != want {
		t.Errorf("busiest route is %s, want %s", top, want)
	}
	if n := routes[top] / opts.Days; n < 30 {
		t.Errorf("busiest route has %d prices a day, want many", n)
	}
}

// TestStreamsMillion reads a dump of a million prices through a pipe, line by line, and checks
// that writing it allocates far less than its size.
func TestStreamsMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	const prices = 1_000_000
	pr, pw := io.Pipe()
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	go func() {
		st, err := Write(pw, Options{Seed: 9, Prices: prices})
		pw.CloseWithError(err)
		done <- result{st, err}
	}()

	r := bufio.NewReaderSize(pr, 64<<10)
	var lines, rows, size int64
	inPrices := false
	for {
		line, err := r.ReadSlice('\n')
		size += int64(len(line))
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines++
		switch {
		case bytes.HasPrefix(line, []byte("COPY public.prices ")):
			inPrices = true
		case inPrices && bytes.Equal(line, []byte("\\.\n")):
			inPrices = false
		case inPrices:
			rows++
		}
	}
	res := <-done
	runtime.ReadMemStats(&after)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if rows != prices || res.st.Prices != prices {
		t.Errorf("read %d price rows, Stats say %d, want %d", rows, res.st.Prices, prices)
	}
	if size != res.st.Bytes {
		t.Errorf("read %d bytes, Stats say %d", size, res.st.Bytes)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d lines, %d bytes; %d bytes allocated", lines, size, alloc)
	if alloc > uint64(size)/4 {
		t.Errorf("writing %d bytes allocated %d bytes: the dump is not streamed", size, alloc)
	}
}

// TestScalesRoutes checks that more prices mean more routes and more prices per route-day,
// over the same month.
func TestScalesRoutes(t *testing.T) {
	_, small := defaultOutput(t)
	big, err := Write(io.Discard, Options{Seed: DefaultSeed, Prices: 2_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if big.Prices != 2_000_000 || big.RouteDays != big.Routes*DefaultDays {
		t.Errorf("big dump: %+v", big)
	}
	if big.Routes <= 2*small.Routes {
		t.Errorf("%d routes for 2M prices, %d for 50k: want several times more", big.Routes, small.Routes)
	}
	perRouteDay := func(s Stats) float64 { return float64(s.Prices) / float64(s.RouteDays) }
	if perRouteDay(big) <= 2*perRouteDay(small) {
		t.Errorf("%.1f prices per route-day for 2M prices, %.1f for 50k", perRouteDay(big), perRouteDay(small))
	}
}

type failingWriter struct{ left int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.left {
		n := f.left
		f.left = 0
		return n, io.ErrShortWrite
	}
	f.left -= len(p)
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	for _, at := range []int{0, 1000, 500_000} {
		if _, err := Write(&failingWriter{left: at}, DefaultOptions()); err == nil {
			t.Errorf("write failing after %d bytes: no error", at)
		}
	}
}
