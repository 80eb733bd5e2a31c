package api_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/api"
	"rates/internal/store"
	"rates/internal/testing/dbtest"
)

// notifyBound is the documented bound for a change heard by the listener: it reaches every
// answer within a second of its commit.
const notifyBound = time.Second

// startWatched builds a handler with the answer cache, listening through listenCfg (nil: a
// listener that can never connect), and starts it; the watcher stops when the test ends.
func startWatched(t *testing.T, pool *pgxpool.Pool, listenCfg *pgx.ConnConfig, poll time.Duration) *api.Handler {
	t.Helper()
	cfg := testConfig
	cfg.CacheBytes = 1 << 20
	cfg.PollInterval = poll
	cfg.Listen = func(ctx context.Context) (api.Listener, error) {
		if listenCfg == nil {
			return nil, errors.New("no listener in this test")
		}
		return store.Listen(ctx, listenCfg)
	}
	h := api.New(store.New(pool), cfg, readyReadiness(), dbtest.Discard)
	stop, err := h.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return h
}

func connConfig(t *testing.T, url string) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// untilChanged asks for target until its body differs from before, and returns how long after
// since that took; it fails the test past limit.
func untilChanged(t *testing.T, h *api.Handler, target, before string, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		if _, _, body := do(t, h, "GET", target); body != before {
			return time.Since(since)
		}
		if time.Since(since) > limit {
			t.Fatalf("%s still answers %s %s after the commit", target, before, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A committed change of the data_generation row, and nothing else, reaches the caches within
// the documented bound: heard by the listener (within a second, the poll being far off), or,
// with no listener at all, by the poll (within twice its interval). This is the contract with
// every writer: move the row in the transaction that changes what GET /rates shows.
func TestGenerationChangeReachesCachesWithinBound(t *testing.T) {
	const target = "/rates?date_from=2021-01-03&date_to=2021-01-03&orig_code=CNAAA&dest_code=DEAAA"
	for _, tc := range []struct {
		name   string
		listen bool
		poll   time.Duration
		bound  time.Duration
	}{
		{"notified", true, time.Minute, notifyBound},
		{"polled, no listener", false, 100 * time.Millisecond, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, url := dbtest.Seeded(t, srv, "testdata/fixture.sql")
			var lc *pgx.ConnConfig
			if tc.listen {
				lc = connConfig(t, url)
			}
			h := startWatched(t, pool, lc, tc.poll)
			_, _, before := do(t, h, "GET", target)
			// A price behind the generation's back: the caches must not see it yet.
			exec(t, pool, "ALTER TABLE prices DISABLE TRIGGER prices_bump_generation")
			exec(t, pool, "INSERT INTO prices VALUES ('CNAAA', 'DEAAA', '2021-01-03', 100)")
			time.Sleep(tc.bound)
			if _, _, body := do(t, h, "GET", target); body != before {
				t.Fatalf("the answer changed without a change of the generation: %s", body)
			}
			committed := time.Now()
			exec(t, pool, "UPDATE data_generation SET generation = generation + 1")
			took := untilChanged(t, h, target, before, committed, tc.bound)
			t.Logf("the change reached the answer %s after its commit", took)
		})
	}
}

// listenerPIDs returns the server processes of the connections that listen for changes.
func listenerPIDs(t *testing.T, pool *pgxpool.Pool) []uint32 {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity
		WHERE application_name = 'rates listener' AND datname = current_database()`)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// waitListener waits until a listening connection other than those in old exists.
func waitListener(t *testing.T, pool *pgxpool.Pool, old []uint32, limit time.Duration) uint32 {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, pid := range listenerPIDs(t, pool) {
			if !slices.Contains(old, pid) {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no new listening connection within %s (old: %v)", limit, old)
	return 0
}

// A listening connection that is lost, closed by the server or silently dead, is replaced, and
// changes are heard again within the bound. The poll is a minute away, so only a listener can
// bring the change in time.
func TestLostListenerHeals(t *testing.T) {
	const target = "/rates?date_from=2021-01-03&date_to=2021-01-03&orig_code=CNAAA&dest_code=DEAAA"
	for _, tc := range []struct {
		name string
		lose func(t *testing.T, pool *pgxpool.Pool, pid uint32, p *proxy)
		// heal is how long the watcher may take to notice: at once for a closed connection,
		// one ping period and the ping's timeout for a silent one.
		heal time.Duration
	}{
		{"terminated by the server", func(t *testing.T, pool *pgxpool.Pool, pid uint32, _ *proxy) {
			exec(t, pool, "SELECT pg_terminate_backend("+strconv.Itoa(int(pid))+")")
		}, 2 * time.Second},
		{"silently dead", func(_ *testing.T, _ *pgxpool.Pool, _ uint32, p *proxy) { p.blackhole() }, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, url := dbtest.Seeded(t, srv, "testdata/fixture.sql")
			p := startProxy(t, connConfig(t, url))
			lc := connConfig(t, url)
			lc.Host, lc.Port = "127.0.0.1", p.port()
			h := startWatched(t, pool, lc, time.Minute)
			first := waitListener(t, pool, nil, 5*time.Second)
			_, _, before := do(t, h, "GET", target)
			tc.lose(t, pool, first, p)
			waitListener(t, pool, []uint32{first}, tc.heal)
			committed := time.Now()
			exec(t, pool, "INSERT INTO prices VALUES ('CNAAA', 'DEAAA', '2021-01-03', 100)")
			took := untilChanged(t, h, target, before, committed, notifyBound)
			t.Logf("after the new listener, the change reached the answer %s after its commit", took)
		})
	}
}

// proxy forwards TCP connections to a PostgreSQL server; blackhole makes the connections open
// at that moment drop everything from then on, without closing them, as a dead peer or a
// dropped route does.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*atomic.Bool
}

func startProxy(t *testing.T, upstream *pgx.ConnConfig) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	addr := net.JoinHostPort(upstream.Host, strconv.Itoa(int(upstream.Port)))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			dead := &atomic.Bool{}
			p.mu.Lock()
			p.conns = append(p.conns, dead)
			p.mu.Unlock()
			t.Cleanup(func() { c.Close(); up.Close() })
			go pipe(up, c, dead)
			go pipe(c, up, dead)
		}
	}()
	return p
}

func (p *proxy) port() uint16 { return uint16(p.ln.Addr().(*net.TCPAddr).Port) } //nolint:gosec // G115: a TCP port

func (p *proxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.conns {
		d.Store(true)
	}
}

// pipe copies src to dst until either fails; once dead, what it reads is dropped.
func pipe(dst io.Writer, src io.Reader, dead *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !dead.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
