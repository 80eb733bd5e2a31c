package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"rates/internal/api"
	"rates/internal/config"
	"rates/internal/metrics"
	"rates/internal/seed"
	"rates/internal/server"
	"rates/internal/store"
)

const usage = `usage: rates <command> [arguments]

commands:
  serve                          check the schema (MIGRATE_ON_START=true: migrate), import
                                 SEED_FILE if set, then serve HTTP
  migrate [up | down N | version | force V]
                                 manage the schema (default: up); up also creates or updates
                                 the login roles DB_API_ROLE and DB_WORKER_ROLE
  seed --file PATH [--replace [--discard-batches]]
                                 import a plain-format pg_dump file
  ingest --file PATH [--kind prices|ports|regions] [--mode append|replace] [--json]
                                 load one CSV batch (plain or gzip), all or nothing
  batches list [--limit N] [--json] | show ID [--json] | revert ID [--json]
                                 list, show or revert loaded batches
  worker [--check]               load the batches announced on INGEST_QUEUE_URL (S3 events via SQS);
                                 --check: verify settings, queue and database access, then exit
  check [--repair]               compare derived data (price_daily) with prices; --repair
                                 rebuilds it in one transaction
  version                        print the version

Settings come from the environment; see docs/configuration.md.
`

// run executes one command. Errors are logged before they are returned, so the caller only
// chooses the exit code.
func run(ctx context.Context, args []string, lookup config.Lookup, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "version", "--version":
		fmt.Fprintln(stdout, version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "serve", "migrate", "seed", "ingest", "batches", "worker", "check":
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}

	cfg, cfgErr := config.Load(lookup)
	ing, ingErr := config.LoadIngest(lookup)
	cache, cacheErr := config.LoadCache(lookup)
	cfgErr = errors.Join(cfgErr, ingErr, cacheErr)
	// Log lines and metric lines (embedded metric format) share the output: one lock keeps
	// each line whole.
	stderr = &lockedWriter{w: stderr}
	log := newLogger(cfg.Log, stderr).With("command", cmd)
	if cfgErr != nil {
		log.Error("invalid configuration", "error", cfgErr.Error())
		return cfgErr
	}
	var err error
	switch cmd {
	case "serve":
		if len(args) > 0 {
			err = fmt.Errorf("serve takes no arguments (got %q): configure it with environment variables", args)
			break
		}
		err = serve(ctx, cfg, ing, cache, stderr, log)
	case "migrate":
		err = migrateCmd(ctx, cfg, lookup, args, stdout, log)
	case "seed":
		err = seedCmd(ctx, cfg, args, stdout, stderr, log)
	case "ingest":
		err = ingestCmd(ctx, cfg, ing, args, stdout, stderr, log)
	case "batches":
		err = batchesCmd(ctx, cfg, ing, args, stdout, stderr, log)
	case "worker":
		err = workerCmd(ctx, cfg, ing, args, stdout, stderr, log)
	case "check":
		err = checkCmd(ctx, cfg, args, stdout, stderr, log)
	}
	if err != nil {
		err = advise(cmd, err)
		log.Error(cmd+" failed", "error", err.Error())
	}
	return err
}

// lockedWriter serialises writes, one line each.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// publishMetrics writes m to w in CloudWatch embedded metric format every METRICS_EMF_INTERVAL
// until stop is called, then once more; without METRICS_EMF_NAMESPACE it does nothing. It
// outlives ctx so that the last flush comes after the command has drained.
func publishMetrics(ctx context.Context, cfg config.Metrics, m *metrics.Metrics, w io.Writer, log *slog.Logger) (stop func()) {
	if cfg.EMFNamespace == "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.NewEMF(w, cfg.EMFNamespace, cfg.EMFService).Run(ctx, cfg.EMFInterval); err != nil {
			log.Warn("publishing metrics failed", "error", err.Error())
		}
	}()
	log.Info("publishing metrics in embedded metric format", "namespace", cfg.EMFNamespace, "service", cfg.EMFService, "interval", cfg.EMFInterval.String())
	return func() { cancel(); <-done }
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openDB resolves the password, then connects with bounded retries.
func openDB(ctx context.Context, cfg config.DB, log *slog.Logger) (*pgxpool.Pool, error) {
	if cfg.PasswordSSMParameter != "" {
		client, err := config.NewSSMClient(ctx)
		if err != nil {
			return nil, err
		}
		if err := config.ResolvePassword(ctx, &cfg, client); err != nil {
			return nil, err
		}
		log.Info("database password read from SSM", "parameter", cfg.PasswordSSMParameter)
	}
	poolCfg, err := cfg.PoolConfig()
	if err != nil {
		return nil, err
	}
	log.Info("connecting to database", "db", cfg)
	return store.Open(ctx, poolCfg, cfg.WaitTimeout, log)
}

// openReady connects and makes sure this binary can use the schema, as every command that
// touches data does first. With MIGRATE_ON_START it applies pending migrations (make run,
// compose, tests); otherwise (AWS, where the deploy's migration task migrates) it only checks:
// a schema older than the binary needs stops the command before anything listens, one newer
// (a rollback to an earlier release) is used as it is.
func openReady(ctx context.Context, cfg config.Config, log *slog.Logger) (*pgxpool.Pool, error) {
	pool, err := openDB(ctx, cfg.DB, log)
	if err != nil {
		return nil, err
	}
	if cfg.Migrate.OnStart {
		err = migrateUp(ctx, pool, log)
	}
	if err == nil {
		var s store.Schema
		if s, err = store.CheckSchema(ctx, pool); err == nil {
			if s.Newer() {
				log.Warn("database schema is newer than this binary: serving it as the previous release (expand/contract keeps it compatible)",
					"schema_version", s.Have, "binary_version", s.Need)
			} else {
				log.Info("schema version checked", "schema_version", s.Have, "binary_version", s.Need)
			}
		}
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// serveMetrics serves m on METRICS_ADDR, a port of its own that the load balancer never
// exposes, until stop is called; without METRICS_ADDR it does nothing.
func serveMetrics(ctx context.Context, cfg config.Config, m *metrics.Metrics, log *slog.Logger) (stop func() error, err error) {
	if cfg.HTTP.MetricsAddr == "" {
		return func() error { return nil }, nil
	}
	ln, err := net.Listen("tcp", cfg.HTTP.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (METRICS_ADDR): %w", cfg.HTTP.MetricsAddr, err)
	}
	// Not derived from ctx's cancellation: SIGTERM must not close this listener while the API
	// drains; stop does, after the API has stopped.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, ln, m.Handler(), serverConfig(cfg.HTTP, config.Shutdown{Timeout: time.Second}), noDrain{}, log.With("listener", "metrics"))
	}()
	return func() error { cancel(); return <-done }, nil
}

func migrateUp(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	m, err := store.NewMigrator(ctx, pool, log)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(ctx); err != nil {
		return err
	}
	v, _, err := m.Version()
	if err != nil {
		return err
	}
	log.Info("schema up to date", "version", v)
	return nil
}

func serve(ctx context.Context, cfg config.Config, ing config.Ingest, cache config.Cache, logOut io.Writer, log *slog.Logger) error {
	m := metrics.New(version)
	stopPublishing := publishMetrics(ctx, cfg.Metrics, m, logOut, log)
	defer stopPublishing()
	pool, err := openReady(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	m.WatchPool(pool)
	if cfg.Seed.File != "" {
		res, err := seed.New(pool, log).ApplyFile(ctx, cfg.Seed.File, seed.Options{})
		m.SeedDone(res.Skipped, res.Rows, res.Duration, err)
		if err != nil {
			return err
		}
	}
	// Bind only once the database is ready, so a listening instance can always answer.
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	stopMetrics, err := serveMetrics(ctx, cfg, m, log)
	if err != nil {
		ln.Close()
		return err
	}
	reads, closeReads, err := openReads(ctx, cfg.DB, pool, log)
	if err != nil {
		_ = ln.Close()
		_ = stopMetrics()
		return err
	}
	defer closeReads()
	batches, closeBatches, err := batchHandler(ctx, cfg, ing, m, log)
	if err != nil {
		_ = ln.Close()
		_ = stopMetrics()
		return err
	}
	defer closeBatches()
	readiness := &api.Readiness{}
	handler := api.New(store.New(reads), api.Config{
		MaxRangeDays:  cfg.API.MaxRangeDays,
		QueryTimeout:  cfg.DB.QueryTimeout,
		MaxQueryBytes: cfg.API.MaxQueryBytes,
		CacheBytes:    cfg.API.CacheBytes,
		// Notifications come from the primary: a replica neither listens nor replays NOTIFY.
		Listen: func(ctx context.Context) (api.Listener, error) {
			return store.Listen(ctx, pool.Config().ConnConfig)
		},
		PollInterval: cache.PollInterval,
		MaxAge:       cache.MaxAge,
		Preload:      cache.Preload,
		Metrics:      m,
		ServeMetrics: cfg.HTTP.MetricsAddr == "",
		Batches:      batches,
		RequestLog:   api.RequestLog{SampleEvery: cfg.Log.Requests.SampleEvery, Slow: cfg.Log.Requests.Slow},
	}, readiness, log)
	stopWatching, err := handler.Start(ctx)
	if err != nil {
		_ = ln.Close()
		_ = stopMetrics()
		return err
	}
	defer stopWatching()
	readiness.SetReady(true)
	err = server.Run(ctx, ln, handler, serverConfig(cfg.HTTP, cfg.Shutdown), readiness, log)
	// Metrics stay up until the API has drained, then stop with it.
	return errors.Join(err, stopMetrics())
}

// openReads returns the pool /rates reads from: a pool on DB_READ_HOST when it is set, else the
// primary's. Both the data generation and the answers are read there: a replica replays the
// primary's changes in order, so an answer read after the generation is never older than that
// generation, and a cached answer is never kept past a change the replica has applied. Readers
// see a change once the replica has replayed it (its replica lag). DB_READ_HOST must therefore
// name one replica, not a name that spreads connections over several replicas that may lag
// differently. Writes, migrations and the seed stay on the primary.
func openReads(ctx context.Context, cfg config.DB, primary *pgxpool.Pool, log *slog.Logger) (*pgxpool.Pool, func(), error) {
	readCfg, ok := cfg.Reader()
	if !ok {
		return primary, func() {}, nil
	}
	reads, err := openDB(ctx, readCfg, log.With("pool", "reads"))
	if err != nil {
		return nil, nil, fmt.Errorf("read replica (DB_READ_HOST): %w", err)
	}
	return reads, reads.Close, nil
}

// serverConfig hands the server its settings.
func serverConfig(h config.HTTP, s config.Shutdown) server.Config {
	return server.Config{
		ReadHeaderTimeout: h.ReadHeaderTimeout, ReadTimeout: h.ReadTimeout, WriteTimeout: h.WriteTimeout,
		IdleTimeout: h.IdleTimeout, MaxHeaderBytes: h.MaxHeaderBytes,
		DrainDelay: s.DrainDelay, ShutdownTimeout: s.Timeout,
	}
}

// noDrain is the readiness of a listener that no load balancer checks.
type noDrain struct{}

func (noDrain) SetReady(bool) {}

func migrateCmd(ctx context.Context, cfg config.Config, lookup config.Lookup, args []string, stdout io.Writer, log *slog.Logger) error {
	action := "up"
	if len(args) > 0 {
		action, args = args[0], args[1:]
	}
	wantArgs := map[string]int{"up": 0, "version": 0, "down": 1, "force": 1}
	n, ok := wantArgs[action]
	if !ok || len(args) != n {
		return fmt.Errorf("usage: rates migrate [up | down N | version | force V]")
	}
	var num int
	if n == 1 {
		var err error
		if num, err = strconv.Atoi(args[0]); err != nil {
			return fmt.Errorf("migrate %s: %q is not a number", action, args[0])
		}
	}
	roles, err := config.LoadRoles(lookup)
	if err != nil {
		return err
	}
	pool, err := openDB(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := store.NewMigrator(ctx, pool, log)
	if err != nil {
		return err
	}
	defer m.Close()
	switch action {
	case "up":
		if err = m.Up(ctx); err == nil && roles.Any() {
			err = syncRoles(ctx, pool, roles, log)
		}
	case "down":
		err = m.Down(ctx, num)
	case "force":
		err = m.Force(ctx, num)
	}
	if err != nil {
		return err
	}
	v, dirty, err := m.Version()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema version %d (dirty: %t)\n", v, dirty)
	return nil
}

// syncRoles creates or updates the login roles of the services with their passwords (read
// from SSM when so configured) and re-applies the grants.
func syncRoles(ctx context.Context, pool *pgxpool.Pool, roles config.Roles, log *slog.Logger) error {
	if roles.API.PasswordSSMParameter != "" || roles.Worker.PasswordSSMParameter != "" {
		client, err := config.NewSSMClient(ctx)
		if err != nil {
			return err
		}
		if err := config.ResolveRolePasswords(ctx, &roles, client); err != nil {
			return err
		}
	}
	var login []store.LoginRole
	if roles.API.Name != "" {
		login = append(login, store.LoginRole{Name: roles.API.Name, Password: roles.API.Password, Group: store.ReaderRole})
	}
	if roles.Worker.Name != "" {
		login = append(login, store.LoginRole{Name: roles.Worker.Name, Password: roles.Worker.Password, Group: store.LoaderRole})
	}
	if err := store.SyncRoles(ctx, pool, login); err != nil {
		return err
	}
	log.Info("database roles in step", "api_role", roles.API.Name, "worker_role", roles.Worker.Name)
	return nil
}

func seedCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", cfg.Seed.File, "plain-format pg_dump file to import (default $SEED_FILE)")
	replace := fs.Bool("replace", false, "replace data already in the database")
	discard := fs.Bool("discard-batches", false, "with --replace: discard the ingested batches too (refused without it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" || fs.NArg() > 0 {
		return errors.New("usage: rates seed --file PATH [--replace [--discard-batches]]")
	}
	pool, err := openReady(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := seed.New(pool, log).ApplyFile(ctx, *file, seed.Options{Replace: *replace, DiscardBatches: *discard})
	if err != nil {
		return err
	}
	if res.Skipped {
		fmt.Fprintf(stdout, "%s already applied (sha256 %s): nothing to do\n", *file, res.SHA256)
		return nil
	}
	fmt.Fprintf(stdout, "%s imported in %s: regions %d, ports %d, prices %d\n",
		*file, res.Duration.Round(1e6), res.Rows["regions"], res.Rows["ports"], res.Rows["prices"])
	return nil
}
