package api

import (
	"context"
	"sync"
	"time"

	"rates/internal/store"
)

// generationReader shares reads of the data generation among concurrent requests without
// giving any of them a value read before it arrived: a request that arrives while a read is
// in flight waits for the next read, which starts when the one in flight ends and serves
// every request that arrived in between. Under load, reads run back to back, one round trip
// each however many requests wait, and a request waits at most for two of them; an answer
// built on the value reflects every change committed before the request arrived.
type generationReader struct {
	read    func(context.Context) (store.Generation, error)
	timeout time.Duration
	// observe sees every value read, with the time its read began, in the order of the reads,
	// before any waiter does.
	observe func(store.Generation, time.Time)

	mu       sync.Mutex
	inFlight bool
	next     *generationCall // the read the requests arriving now will get
}

type generationCall struct {
	done chan struct{}
	gen  store.Generation
	err  error
}

func newGenerationReader(read func(context.Context) (store.Generation, error), timeout time.Duration, observe func(store.Generation, time.Time)) *generationReader {
	return &generationReader{read: read, timeout: timeout, observe: observe}
}

// get returns a generation read entirely after the call began.
func (r *generationReader) get(ctx context.Context) (store.Generation, error) {
	r.mu.Lock()
	if r.next == nil {
		r.next = &generationCall{done: make(chan struct{})}
	}
	call := r.next
	if !r.inFlight {
		r.inFlight, r.next = true, nil
		// The reads are shared, so no single request's cancellation may stop them.
		go r.loop(context.WithoutCancel(ctx), call)
	}
	r.mu.Unlock()
	select {
	case <-call.done:
		return call.gen, call.err
	case <-ctx.Done():
		return store.Generation{}, ctx.Err()
	}
}

// loop runs reads back to back while requests wait for one.
func (r *generationReader) loop(base context.Context, call *generationCall) {
	for call != nil {
		ctx, cancel := context.WithTimeout(base, r.timeout)
		start := time.Now()
		call.gen, call.err = r.read(ctx)
		cancel()
		if call.err == nil && r.observe != nil {
			r.observe(call.gen, start)
		}
		r.mu.Lock()
		// Requests that arrived during this read joined r.next: it starts now, after they came.
		close(call.done)
		call = r.next
		r.next = nil
		r.inFlight = call != nil
		r.mu.Unlock()
	}
}
