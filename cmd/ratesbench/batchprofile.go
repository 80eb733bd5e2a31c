package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// rdsSettings set the bench cluster of section batches as RDS for PostgreSQL's default
// parameter group sets an instance: shared_buffers is {DBInstanceClassMemory/32768} 8 kB pages
// (a quarter of the memory: 2 GB for the 8 GiB of a db.m7g.large), max_wal_size 2 GB and
// checkpoint_timeout 5 min. A 2M-row batch writes about 1 GB of WAL, so that a checkpoint in
// the middle of a run is the exception, as it is on RDS, rather than the rule of PostgreSQL's
// own 128 MB of buffers and 1 GB of WAL.
var rdsSettings = []string{"shared_buffers=2GB", "max_wal_size=2GB", "checkpoint_timeout=5min"}

// waitProfile samples what the database's active backends wait for while a load runs: the
// share of samples per wait event ("CPU" when a backend waits for nothing), and the
// checkpoints that started meanwhile.
type waitProfile struct {
	mu      sync.Mutex
	counts  map[string]int
	samples int
	ckpt    int64
	stop    context.CancelFunc
	done    chan struct{}
}

const waitSampleSQL = `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU')
	FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
	  AND state = 'active' AND backend_type = 'client backend'`

const checkpointsSQL = `SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter`

// sampleWaits starts sampling the backends of the database at dbURL every 10 ms.
func sampleWaits(ctx context.Context, dbURL string) (*waitProfile, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	p := &waitProfile{counts: map[string]int{}, done: make(chan struct{})}
	if err := conn.QueryRow(ctx, checkpointsSQL).Scan(&p.ckpt); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("count checkpoints: %w", err)
	}
	ctx, p.stop = context.WithCancel(ctx)
	go func() {
		defer close(p.done)
		defer conn.Close(context.WithoutCancel(ctx))
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rows, err := conn.Query(ctx, waitSampleSQL)
			if err != nil {
				continue
			}
			events, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				continue
			}
			p.mu.Lock()
			for _, e := range events {
				p.counts[e]++
			}
			p.samples++
			p.mu.Unlock()
		}
	}()
	return p, nil
}

// finish stops the sampling and summarises it: the busiest events, as the average number of
// backends in each, and the checkpoints begun since the start.
func (p *waitProfile) finish(ctx context.Context, dbURL string) (string, error) {
	p.stop()
	<-p.done
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var ckpt int64
	if err := conn.QueryRow(ctx, checkpointsSQL).Scan(&ckpt); err != nil {
		return "", fmt.Errorf("count checkpoints: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	events := slices.SortedFunc(maps.Keys(p.counts), func(a, b string) int {
		return cmp.Or(cmp.Compare(p.counts[b], p.counts[a]), strings.Compare(a, b))
	})
	var parts []string
	for _, e := range events[:min(len(events), 5)] {
		parts = append(parts, fmt.Sprintf("%s %.2f", e, float64(p.counts[e])/float64(max(p.samples, 1))))
	}
	return fmt.Sprintf("%s; checkpoints %d", strings.Join(parts, ", "), ckpt-p.ckpt), nil
}
