package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"rates/internal/ingest/csvbatch"
)

// memParts serves parts from memory and counts how often each was opened.
type memParts struct {
	mu     sync.Mutex
	data   map[string][]byte
	opened map[string]int
	// onOpen, when set, runs before a part is opened.
	onOpen func(key string, n int)
}

func newMemParts() *memParts {
	return &memParts{data: map[string][]byte{}, opened: map[string]int{}}
}

func (m *memParts) parts() Parts {
	return Parts{Open: func(_ context.Context, key string) (io.ReadCloser, error) {
		m.mu.Lock()
		m.opened[key]++
		n := m.opened[key]
		hook := m.onOpen
		m.mu.Unlock()
		if hook != nil {
			hook(key, n)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		d, ok := m.data[key]
		if !ok {
			return nil, fmt.Errorf("no part %s", key)
		}
		return io.NopCloser(bytes.NewReader(d)), nil
	}}
}

// manifestOf stores the parts and returns the manifest naming them with their checksums.
func manifestOf(t *testing.T, m *memParts, mode Mode, parts ...[]byte) []byte {
	t.Helper()
	var man Manifest
	man.Mode = mode
	for i, p := range parts {
		key := fmt.Sprintf("parts/p%02d.csv", i+1)
		plain := p
		if isGzip(p) {
			plain = gunzip(t, p)
		}
		m.data[key] = p
		man.Parts = append(man.Parts, ManifestPart{Key: key, SHA256: sha(plain)})
	}
	b, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func isGzip(b []byte) bool { return len(b) > 1 && b[0] == 0x1f && b[1] == 0x8b }

func loadManifest(t *testing.T, l *Loader, src Source, data []byte, parts Parts) Result {
	t.Helper()
	res, err := l.LoadManifest(context.Background(), src, data, parts)
	if err != nil {
		t.Fatalf("load manifest %s: %v", src.Name, err)
	}
	return res
}

// A multi-part batch is one batch: its parts (plain and gzip, one without its last line break)
// load in one commit, and it is the same content as the single file holding the header once
// and every row in order, so that file sent afterwards is a duplicate of it.
func TestManifestLoadsItsPartsAsOneBatch(t *testing.T) {
	t.Parallel()
	l := NewLoader(newDB(t), LoaderOptions{}, testLogger(t))
	m := newMemParts()
	rows := [][]string{
		{"PT001,PT002,2024-03-01,100", "PT001,PT002,2024-03-01,200"},
		{"PT001,PT002,2024-03-01,300", "PT003,PT004,2024-03-02,50"},
		{"PT005,PT006,2024-03-03,70"},
	}
	last := csvOf(csvbatch.Header, rows[2]...)
	man := manifestOf(t, m, "", csvOf(csvbatch.Header, rows[0]...), gzipped(csvOf(csvbatch.Header, rows[1]...)), last[:len(last)-1])
	res := loadManifest(t, l, fileSource("daily.manifest.json"), man, m.parts())
	if res.Status != StatusLoaded || res.Rows != 5 || res.Source.Mode != ModeAppend {
		t.Fatalf("manifest load: %+v", res)
	}
	if n := sqlCount(t, l, `SELECT count(*) FROM prices WHERE batch_id = $1`, res.BatchID); n != 5 {
		t.Fatalf("%d rows carry the batch's id, want 5", n)
	}
	if n := sqlCount(t, l, `SELECT sum(price) FROM prices WHERE orig_code = 'PT001' AND day = '2024-03-01'`); n != 600 {
		t.Fatalf("route-day sum %d, want 600", n)
	}
	for key, n := range m.opened {
		if n != 2 {
			t.Errorf("part %s opened %d times, want 2 (checks, then load)", key, n)
		}
	}
	single := csvOf(csvbatch.Header, append(append(rows[0], rows[1]...), rows[2]...)...)
	if dup := load(t, l, fileSource("daily.csv"), single); dup.Status != StatusDuplicate || dup.BatchID != res.BatchID {
		t.Fatalf("the same rows as one file: %+v, want a duplicate of batch %d", dup, res.BatchID)
	}
	if again := loadManifest(t, l, fileSource("again.json"), man, m.parts()); again.Status != StatusDuplicate || again.BatchID != res.BatchID {
		t.Fatalf("the manifest again: %+v, want a duplicate of batch %d", again, res.BatchID)
	}
	if n := routeRows(t, l); n != 5 {
		t.Fatalf("prices holds %d rows, want 5", n)
	}
}

// A replace manifest replaces the route-days of all its parts in one transaction.
func TestManifestReplace(t *testing.T) {
	t.Parallel()
	l := NewLoader(newDB(t), LoaderOptions{}, testLogger(t))
	load(t, l, fileSource("base.csv"), csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,100", "PT001,PT002,2024-03-01,200", "PT003,PT004,2024-03-02,50", "PT007,PT008,2024-03-09,10"))
	m := newMemParts()
	man := manifestOf(t, m, ModeReplace, csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,150"), csvOf(csvbatch.Header, "PT003,PT004,2024-03-02,60"))
	res := loadManifest(t, l, fileSource("fix.json"), man, m.parts())
	if res.Status != StatusLoaded || res.Source.Mode != ModeReplace || res.DisplacedRows != 3 {
		t.Fatalf("replace manifest: %+v, want 3 rows displaced", res)
	}
	if n := sqlCount(t, l, `SELECT sum(price) FROM prices`); n != 150+60+10 {
		t.Fatalf("prices sum to %d after the replace, want %d", n, 150+60+10)
	}
}

// Every problem of every part is found before the transaction and rejects the whole batch,
// naming the part and its line; nothing is written.
func TestManifestRejectsBadParts(t *testing.T) {
	t.Parallel()
	l := NewLoader(newDB(t), LoaderOptions{}, testLogger(t))
	good := csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,100")
	cases := []struct {
		name  string
		parts [][]byte
		tweak func(man *Manifest)
		want  []csvbatch.RowError
		bad   int64
	}{
		{name: "bad row in the second part", parts: [][]byte{good, csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,100", "PT001,PT002,2024-02-30,1")},
			want: []csvbatch.RowError{{Part: "parts/p02.csv", Line: 3, Column: "day", Reason: `"2024-02-30" is not a real date`}}, bad: 1},
		{name: "unknown port", parts: [][]byte{csvOf(csvbatch.Header, "PT001,NOPE1,2024-03-01,100"), good},
			want: []csvbatch.RowError{{Part: "parts/p01.csv", Line: 2, Column: "dest_code", Reason: `unknown port code "NOPE1"`}}, bad: 1},
		{name: "wrong header", parts: [][]byte{good, []byte("a,b,c,d\nPT001,PT002,2024-03-01,1\n")},
			want: []csvbatch.RowError{{Part: "parts/p02.csv", Line: 1, Reason: `header must be orig_code,dest_code,day,price, got "a,b,c,d"`}}},
		{name: "checksum differs", parts: [][]byte{good, good},
			tweak: func(man *Manifest) { man.Parts[1].SHA256 = strings.Repeat("0", 64) },
			want:  []csvbatch.RowError{{Part: "parts/p02.csv", Reason: "part content has sha256 " + sha(good) + ", the manifest says " + strings.Repeat("0", 64)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemParts()
			data := manifestOf(t, m, "", tc.parts...)
			if tc.tweak != nil {
				var man Manifest
				if err := json.Unmarshal(data, &man); err != nil {
					t.Fatal(err)
				}
				tc.tweak(&man)
				data, _ = json.Marshal(man)
			}
			before := fingerprint(t, l.pool)
			res := loadManifest(t, l, fileSource(tc.name), data, m.parts())
			if res.Status != StatusRejected || res.Report == nil || res.Report.BadRows != tc.bad || !slices.Equal(res.Report.Errors, tc.want) {
				t.Fatalf("result %+v, report %+v; want rejected with %d bad rows and %+v", res, res.Report, tc.bad, tc.want)
			}
			if after := fingerprint(t, l.pool); after != before {
				t.Fatal("a rejected manifest changed prices or price_daily")
			}
			for key, n := range m.opened {
				if n != 1 {
					t.Errorf("part %s opened %d times, want once (the checks)", key, n)
				}
			}
			if n := sqlCount(t, l, `SELECT count(*) FROM batches WHERE id = $1 AND status = 'rejected' AND report->'errors'->0->>'part' IS NOT DISTINCT FROM $2`,
				res.BatchID, nullIfEmpty(tc.want[0].Part)); n != 1 {
				t.Fatalf("batch %d is not recorded as rejected with the part named in its report", res.BatchID)
			}
		})
	}
}

// A manifest that is not one, or names a part the entry point does not allow, is rejected
// with the reason and opens no part.
func TestManifestItselfInvalid(t *testing.T) {
	t.Parallel()
	l := NewLoader(newDB(t), LoaderOptions{}, testLogger(t))
	m := newMemParts()
	valid := manifestOf(t, m, "", csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,100"))
	notAllowed := m.parts()
	notAllowed.Allow = func(string) error { return errors.New("parts must be below incoming/parts/") }
	for name, tc := range map[string]struct {
		data   []byte
		parts  Parts
		reason string
	}{
		"not JSON":       {[]byte("orig_code,dest_code\n"), m.parts(), "manifest is not valid JSON"},
		"no parts":       {[]byte(`{"parts": []}`), m.parts(), "manifest lists no parts"},
		"unknown field":  {[]byte(`{"parts": [], "kind": "ports"}`), m.parts(), `unknown field "kind"`},
		"bad mode":       {[]byte(`{"mode": "merge", "parts": [{"key": "a", "sha256": "` + strings.Repeat("a", 64) + `"}]}`), m.parts(), "unknown batch mode"},
		"part not there": {valid, notAllowed, "parts must be below incoming/parts/"},
	} {
		t.Run(name, func(t *testing.T) {
			opened := len(m.opened)
			res := loadManifest(t, l, fileSource(name), tc.data, tc.parts)
			if res.Status != StatusRejected || len(res.Report.Errors) != 1 || !strings.Contains(res.Report.Errors[0].Reason, tc.reason) {
				t.Fatalf("%+v %+v, want rejected saying %q", res, res.Report, tc.reason)
			}
			if len(m.opened) != opened {
				t.Fatalf("parts were opened for an invalid manifest: %v", m.opened)
			}
		})
	}
	if n := routeRows(t, l); n != 0 {
		t.Fatalf("%d prices written", n)
	}
}

// A part replaced between the checks and the load fails the load with nothing written; the
// next attempt finds the new content and rejects the batch.
func TestManifestPartChangedAfterItsCheck(t *testing.T) {
	t.Parallel()
	l := NewLoader(newDB(t), LoaderOptions{}, testLogger(t))
	m := newMemParts()
	data := manifestOf(t, m, "", csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,100"), csvOf(csvbatch.Header, "PT003,PT004,2024-03-01,100"))
	m.onOpen = func(key string, n int) {
		if key == "parts/p02.csv" && n == 2 {
			m.mu.Lock()
			m.data[key] = csvOf(csvbatch.Header, "PT003,PT004,2024-03-01,999")
			m.mu.Unlock()
		}
	}
	src := s3Source("incoming/manifests/m.json", "e1")
	_, err := l.LoadManifest(context.Background(), src, data, m.parts())
	var srcErr *SourceError
	if !errors.As(err, &srcErr) || !strings.Contains(err.Error(), "parts/p02.csv changed since it was checked") {
		t.Fatalf("err = %v, want a source error naming the changed part", err)
	}
	if n := routeRows(t, l); n != 0 {
		t.Fatalf("%d prices written by a failed load", n)
	}
	res := loadManifest(t, l, src, data, m.parts())
	if res.Status != StatusRejected || res.Report.Errors[0].Part != "parts/p02.csv" {
		t.Fatalf("retry: %+v %+v, want rejected naming the changed part", res, res.Report)
	}
	if replay := loadManifest(t, l, src, data, m.parts()); !replay.Replayed || replay.BatchID != res.BatchID {
		t.Fatalf("the same delivery again: %+v, want the recorded rejection", replay)
	}
}

// rates ingest --manifest reads parts beside the manifest.
func TestFilePartsAreRelativeToTheManifest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	part := csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,100")
	if err := os.MkdirAll(filepath.Join(dir, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p", "a.csv"), part, 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err := FileParts(dir).Open(context.Background(), "p/a.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, part) {
		t.Fatalf("read %q (%v), want the part", got, err)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"parts": [{"key": "incoming/parts/a.csv", "sha256": "` + strings.Repeat("ab", 32) + `"}]}`))
	f.Add([]byte(`{"mode": "replace", "parts": [{"key": "a", "sha256": "x"}]}`))
	f.Add([]byte(`{"parts": [{"key": "a", "sha256": "` + strings.Repeat("0", 64) + `"}, {"key": "a", "sha256": "` + strings.Repeat("0", 64) + `"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		if len(m.Parts) == 0 || len(m.Parts) > MaxManifestParts || (m.Mode != ModeAppend && m.Mode != ModeReplace) {
			t.Fatalf("accepted %+v", m)
		}
		seen := map[string]bool{}
		for _, p := range m.Parts {
			if p.Key == "" || seen[p.Key] || !isSHA256Hex(p.SHA256) {
				t.Fatalf("accepted part %+v of %s", p, data)
			}
			seen[p.Key] = true
		}
	})
}

// A part that cannot be read (not uploaded yet) fails the attempt without recording anything,
// so the delivery is retried rather than rejected.
func TestManifestMissingPartIsRetried(t *testing.T) {
	t.Parallel()
	l := NewLoader(newDB(t), LoaderOptions{}, testLogger(t))
	m := newMemParts()
	data := manifestOf(t, m, "", csvOf(csvbatch.Header, "PT001,PT002,2024-03-01,100"), csvOf(csvbatch.Header, "PT003,PT004,2024-03-01,100"))
	delete(m.data, "parts/p02.csv")
	src := s3Source("incoming/manifests/m.json", "e1")
	_, err := l.LoadManifest(context.Background(), src, data, m.parts())
	var srcErr *SourceError
	if !errors.As(err, &srcErr) || !strings.Contains(err.Error(), "parts/p02.csv") {
		t.Fatalf("err = %v, want a source error naming the missing part", err)
	}
	if _, found, err := l.Find(context.Background(), src); err != nil || found {
		t.Fatalf("a failed attempt was recorded (found=%v, %v): the retry would replay it", found, err)
	}
	if n := routeRows(t, l); n != 0 {
		t.Fatalf("%d prices written", n)
	}
}
