package api

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"rates/internal/store"
)

// Listener hears of committed changes of the data generation (store.Listener).
type Listener interface {
	// Wait returns nil when a change was heard, an error when ctx ended or the connection failed.
	Wait(ctx context.Context) error
	// Ping makes a round trip on the connection.
	Ping(ctx context.Context) error
	Close(ctx context.Context) error
}

// watcher keeps the data generation that requests use without a round trip of their own.
//
// The contract is a bound, not a notification: a value is trusted while the read that found it
// began at most trust ago. Reads come from three sources: the notification of a commit
// (000034's trigger on data_generation, heard by a listening connection), a poll every poll
// interval (so the bound holds when the listener is down or silently dead), and the requests'
// own reads of the days, which carry the generation of their snapshot. Past trust, nothing is
// assumed: requests read the generation themselves (generationReader), as they do when no
// watcher runs, and a database that cannot be reached answers 503 instead of old data.
//
// So every answer reflects every change committed at least trust before the request arrived,
// and a change heard by the listener reaches the caches within one read of its commit.
type watcher struct {
	read    func(context.Context) (store.Generation, error)
	listen  func(context.Context) (Listener, error)
	poll    time.Duration
	trust   time.Duration
	timeout time.Duration
	observe func(store.Generation) // sees every new generation, in order, under mu
	log     *slog.Logger

	running atomic.Bool
	mu      sync.Mutex
	state   atomic.Pointer[watched]
	// heard counts the changes the listener reported; listening tells whether it is connected.
	heard     atomic.Int64
	listening atomic.Bool
}

// watched is a generation and when the read that found it began.
type watched struct {
	gen    store.Generation
	readAt time.Time
}

// initialBackoff is the wait before the second attempt to listen; it doubles up to 5 s.
const initialBackoff = 100 * time.Millisecond

// pingEvery is how often an idle listening connection is checked with a round trip: a peer
// gone without closing leaves a connection that waits for ever without an error.
const pingEvery = 5 * time.Second

// current returns the generation to answer with, and false when none is trusted at now.
func (w *watcher) current(now time.Time) (store.Generation, bool) {
	if w == nil || !w.running.Load() {
		return store.Generation{}, false
	}
	s := w.state.Load()
	if s == nil || now.Sub(s.readAt) > w.trust {
		return store.Generation{}, false
	}
	return s.gen, true
}

// offer records gen, found by a read that began at readAt. Within one epoch the counter only
// grows, so an older value is ignored whenever it arrives; across epochs (a restore), the value
// of the read that began last wins.
func (w *watcher) offer(gen store.Generation, readAt time.Time) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.state.Load()
	switch {
	case cur == nil:
	case gen == cur.gen:
		if readAt.After(cur.readAt) {
			w.state.Store(&watched{gen: gen, readAt: readAt})
		}
		return
	case gen.Epoch == cur.gen.Epoch:
		if gen.Data < cur.gen.Data || gen.Data == cur.gen.Data && gen.Tree < cur.gen.Tree {
			return
		}
		// The read of cur still tells that nothing older than cur.readAt is missing.
		readAt = later(readAt, cur.readAt)
	case !readAt.After(cur.readAt):
		return
	}
	w.state.Store(&watched{gen: gen, readAt: readAt})
	if w.observe != nil {
		w.observe(gen)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// refresh reads the generation and offers it.
func (w *watcher) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	start := time.Now()
	gen, err := w.read(ctx)
	if err != nil {
		return err
	}
	w.offer(gen, start)
	return nil
}

// run keeps the generation fresh until ctx ends: it listens, reconnecting with backoff when the
// connection fails, and reads the generation after every change heard and at every poll. An
// idle listening connection is checked with a round trip every pingEvery.
func (w *watcher) run(ctx context.Context) {
	w.running.Store(true)
	defer w.running.Store(false)
	var (
		l        Listener
		retryAt  time.Time
		backoff  = initialBackoff
		nextPoll = time.Now().Add(w.poll)
		nextPing time.Time
		readErr  error
	)
	drop := func(msg string, err error) {
		w.log.Warn(msg, "error", err.Error())
		_ = l.Close(context.WithoutCancel(ctx))
		l = nil
		w.listening.Store(false)
	}
	defer func() {
		if l != nil {
			_ = l.Close(context.WithoutCancel(ctx))
		}
	}()
	for ctx.Err() == nil {
		if l == nil && w.listen != nil && !time.Now().Before(retryAt) {
			var err error
			if l, err = w.connect(ctx); err != nil {
				w.log.Warn("listening for data changes failed; polling meanwhile", "error", err.Error(), "retry_in", backoff.String())
				retryAt, backoff = time.Now().Add(backoff), min(2*backoff, 5*time.Second)
			} else {
				w.log.Info("listening for data changes", "channel", store.GenerationChannel)
				backoff, nextPing = initialBackoff, time.Now().Add(pingEvery)
				// Changes committed before the listener listened were not heard.
				readErr = w.refresh(ctx)
			}
		}
		until := nextPoll
		if l != nil && nextPing.Before(until) {
			until = nextPing
		} else if l == nil && w.listen != nil && retryAt.Before(until) {
			until = retryAt
		}
		heard, err := w.wait(ctx, l, until)
		switch {
		case heard:
			w.heard.Add(1)
		case err != nil:
			drop("listening connection lost; reconnecting", err)
		case l != nil && !time.Now().Before(nextPing):
			nextPing = time.Now().Add(pingEvery)
			if err := w.ping(ctx, l); err != nil {
				drop("listening connection does not answer; reconnecting", err)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if !heard && time.Now().Before(nextPoll) {
			continue
		}
		nextPoll = time.Now().Add(w.poll)
		err = w.refresh(ctx)
		if (err == nil) != (readErr == nil) {
			if err != nil {
				w.log.Warn("reading the data generation failed; requests read it themselves", "error", err.Error())
			} else {
				w.log.Info("reading the data generation again")
			}
		}
		readErr = err
	}
}

// connect opens a listener within the read timeout.
func (w *watcher) connect(ctx context.Context) (Listener, error) {
	cctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	l, err := w.listen(cctx)
	if err != nil {
		return nil, err
	}
	w.listening.Store(true)
	return l, nil
}

// wait returns after a change is heard (true), at until, or on a failure of the connection
// (its error).
func (w *watcher) wait(ctx context.Context, l Listener, until time.Time) (bool, error) {
	wctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	if l == nil {
		<-wctx.Done()
		return false, nil
	}
	switch err := l.Wait(wctx); {
	case err == nil:
		return true, nil
	case wctx.Err() != nil:
		return false, nil // the poll interval ended; the connection stays usable
	default:
		return false, err
	}
}

func (w *watcher) ping(ctx context.Context, l Listener) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	return l.Ping(ctx)
}
