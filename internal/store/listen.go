package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// GenerationChannel is the channel that data_generation's trigger (000034) signals, at commit,
// in every transaction that changes the row.
const GenerationChannel = "rates_data_generation"

// Listener is a connection of its own that listens on GenerationChannel. It must be on the
// primary: a hot standby refuses LISTEN, and NOTIFY is not replicated.
type Listener struct {
	conn *pgx.Conn
}

// Listen connects with cfg and listens on GenerationChannel. Every change committed after it
// returns is heard on the connection. The connection's application_name is "rates listener",
// so that it can be told apart from the pool's in pg_stat_activity.
func Listen(ctx context.Context, cfg *pgx.ConnConfig) (*Listener, error) {
	cfg = cfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "rates listener"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to listen for data changes: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+GenerationChannel); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("listen for data changes: %w", err)
	}
	return &Listener{conn: conn}, nil
}

// Wait returns when a change is heard, with nil, or with an error when ctx ends first or the
// connection fails. It consumes every notification already received, so one call stands for
// all the changes heard so far.
func (l *Listener) Wait(ctx context.Context) error {
	if _, err := l.conn.WaitForNotification(ctx); err != nil {
		return err
	}
	// With a context already done, WaitForNotification hands out the notifications received
	// and then returns without touching the connection.
	done, cancel := context.WithCancel(ctx)
	cancel()
	for {
		if n, _ := l.conn.WaitForNotification(done); n == nil {
			return nil
		}
	}
}

// Ping makes a round trip on the connection: a connection that looks idle may be dead without
// anything telling it so (a peer gone without closing, a dropped route).
func (l *Listener) Ping(ctx context.Context) error { return l.conn.Ping(ctx) }

// PID is the server process of the connection, to find it in pg_stat_activity.
func (l *Listener) PID() uint32 { return l.conn.PgConn().PID() }

// Close closes the connection.
func (l *Listener) Close(ctx context.Context) error { return l.conn.Close(ctx) }
