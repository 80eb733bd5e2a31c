package batchstore

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// StagedParts is the outcome of StageParts.
type StagedParts struct {
	// Outcomes counts the parts by what StagePart did with them.
	Outcomes map[PartOutcome]int
	// Timings sums the phases of the parts settled (copy_ms, check_ms, insert_ms, daily_ms).
	Timings map[string]int64
	// BatchStatus is the batch's status after its last part: staging when every part is
	// staged (publish it), rejected when one was bad.
	BatchStatus Status
}

// StageParts settles every pending part of batch id with n loaders at once, each part in a
// transaction of its own on a connection of the pool (StagePart): the staging of a manifest
// in one process. A part another loader holds is tried again once that loader is done; past
// the batch's deadline the batch fails. It stops at the first error; the parts settled by
// then stay settled, and a second call settles the rest.
func (s *Store) StageParts(ctx context.Context, id int64, n int, open func(ctx context.Context, key string) (PartRows, error)) (StagedParts, error) {
	out := StagedParts{Outcomes: map[PartOutcome]int{}, Timings: map[string]int64{}, BatchStatus: StatusStaging}
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		parts, err := s.Parts(ctx, id)
		if err != nil {
			return out, err
		}
		var pending []int
		for _, p := range parts {
			if p.Status == "pending" {
				pending = append(pending, p.Part)
			}
		}
		busy := out.Outcomes[PartBusy]
		if err := s.stageEach(ctx, id, n, pending, open, &out); err != nil {
			return out, fmt.Errorf("stage the parts of batch %d: %w", id, err)
		}
		if out.Outcomes[PartBusy] == busy || out.BatchStatus != StatusStaging {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("stage the parts of batch %d: %w", id, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// stageEach stages parts with n loaders at once, adding their outcomes to out; the first
// error stops them.
func (s *Store) stageEach(ctx context.Context, id int64, n int, parts []int, open func(ctx context.Context, key string) (PartRows, error), out *StagedParts) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	todo := make(chan int, len(parts))
	for _, p := range parts {
		todo <- p
	}
	close(todo)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range max(n, 1) {
		wg.Go(func() {
			for part := range todo {
				res, err := s.StagePart(ctx, id, part, open)
				mu.Lock()
				if err != nil && first == nil {
					first = err
					cancel()
				}
				if err == nil {
					out.add(res)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func (o *StagedParts) add(res PartResult) {
	o.Outcomes[res.Outcome]++
	for k, v := range res.Timings {
		o.Timings[k] += v
	}
	if res.BatchStatus != StatusStaging {
		o.BatchStatus = res.BatchStatus
	}
}
