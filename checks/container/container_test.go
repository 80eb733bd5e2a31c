package container

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"rates/internal/config"
	"rates/internal/testing/pgserver"
)

const root = "../.."

var srv *pgserver.Server

func TestMain(m *testing.M) {
	code := pgserver.Main(m, &srv)
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// built is the binary of the Dockerfile's build line, built once for all tests of the package:
// linking a static binary takes seconds on a busy machine.
var built struct {
	once sync.Once
	dir  string
	err  error
}

// dockerfile is the parsed final stage of the Dockerfile plus its build command.
type dockerfile struct {
	froms      []string          // image references of every FROM
	buildCmd   string            // the RUN line that runs go build
	env        map[string]string // ENV of the final stage
	copies     map[string]string // final stage: image path -> source path in the build context
	user       string
	expose     []string
	entrypoint string
	lines      []string // all instructions, continuation lines joined
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{env: map[string]string{}, copies: map[string]string{}}
	var cur string
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		d.lines = append(d.lines, cur+trimmed)
		cur = ""
	}
	for _, ins := range d.lines {
		word, rest, _ := strings.Cut(ins, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(word) {
		case "FROM":
			d.froms = append(d.froms, strings.Fields(rest)[0])
			d.env, d.copies = map[string]string{}, map[string]string{} // a new stage
		case "RUN":
			if strings.Contains(rest, "go build") {
				d.buildCmd = rest
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				d.env[k] = v
			}
		case "COPY":
			var args []string
			for _, f := range strings.Fields(rest) {
				if !strings.HasPrefix(f, "--") {
					args = append(args, f)
				}
			}
			if !strings.Contains(rest, "--from=") && len(args) == 2 {
				d.copies[args[1]] = args[0]
			}
		case "USER":
			d.user = rest
		case "EXPOSE":
			d.expose = strings.Fields(rest)
		case "ENTRYPOINT":
			d.entrypoint = rest
		}
	}
	return d
}

// buildLikeDockerfile runs the Dockerfile's own go build command, writing the binary to dir.
func buildLikeDockerfile(d dockerfile, dir string) error {
	if d.buildCmd == "" || !strings.Contains(d.buildCmd, "-o /out/rates") {
		return fmt.Errorf("no `go build ... -o /out/rates` RUN line in the Dockerfile: %q", d.buildCmd)
	}
	cmdline := strings.Replace(d.buildCmd, "/out/rates", filepath.Join(dir, "rates"), 1)
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION=container-test")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", cmdline, err, out)
	}
	return nil
}

// knownVariables are the environment variables the binary reads, found by asking the
// configuration loaders which names they look up.
func knownVariables(t *testing.T) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	record := func(name string) (string, bool) { seen[name] = true; return "", false }
	_, _ = config.Load(record)
	_, _ = config.LoadIngest(record)
	for _, aws := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		seen[aws] = true // read by the AWS SDK's default chain
	}
	return seen
}

// Paths in the image: the synthetic dump, and the RDS CA bundle that DB_SSLROOTCERT names.
const (
	imageDump = "/usr/share/rates/rates.sql"
	rdsBundle = "/usr/share/rates/rds-ca.pem"
)

func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t)
	for _, from := range d.froms {
		if !strings.Contains(from, ":") && !strings.Contains(from, "@sha256:") || strings.HasSuffix(from, ":latest") {
			t.Errorf("base image %q is not pinned to a tag", from)
		}
	}
	if !regexp.MustCompile(`^[1-9]\d*(:\d+)?$`).MatchString(d.user) {
		t.Errorf("USER %q: want a numeric non-root user", d.user)
	}
	if !slices.Contains(d.expose, "3000") {
		t.Errorf("EXPOSE %v: want 3000", d.expose)
	}
	if !strings.Contains(d.entrypoint, "entrypoint.sh") {
		t.Errorf("ENTRYPOINT %q: want entrypoint.sh", d.entrypoint)
	}
	for _, flag := range []string{"CGO_ENABLED=0", "-trimpath", `-s -w`, "-X main.version=${VERSION}"} {
		if !strings.Contains(d.buildCmd, flag) {
			t.Errorf("build command %q lacks %s", d.buildCmd, flag)
		}
	}
	if src := d.copies[imageDump]; src != "db/seed/rates.sql" {
		t.Errorf("the default dump is not copied to %s (copied from %q)", imageDump, src)
	}
	// In AWS the deploy migrates and seeds with one-off tasks: the image does neither by default.
	for _, name := range []string{"SEED_FILE", "MIGRATE_ON_START"} {
		if v, ok := d.env[name]; ok {
			t.Errorf("the image sets %s=%s; it must be unset so that only compose and dev opt in", name, v)
		}
	}
	// The RDS bundle for verify-full comes from the named context rds-ca, never from the network,
	// to the path the task definitions name (modules/ecs_task's DB_SSLROOTCERT).
	raw, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.froms, "busybox:1.37.0-musl") || !strings.Contains(string(raw), "AS rds-ca\n") ||
		!slices.Contains(d.lines, "COPY --from=rds-ca /global-bundle.pem "+rdsBundle) {
		t.Errorf("the Dockerfile must copy the RDS bundle from a stage named rds-ca (replaced by --build-context rds-ca=DIR) to %s", rdsBundle)
	}
	for _, ins := range d.lines {
		if (strings.HasPrefix(ins, "RUN") && (strings.Contains(ins, "wget") || strings.Contains(ins, "curl"))) || strings.HasPrefix(ins, "ADD http") {
			t.Errorf("the Dockerfile downloads something while building (%s): the bundle comes from the rds-ca context", ins)
		}
	}
	tf, err := os.ReadFile(filepath.Join(root, "terraform", "modules", "ecs_task", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(tf), `DB_SSLROOTCERT = "`+rdsBundle+`"`) {
		t.Errorf("modules/ecs_task's DB_SSLROOTCERT is not the image's bundle %s", rdsBundle)
	}
	known := knownVariables(t)
	for name := range d.env {
		if !known[name] {
			t.Errorf("Dockerfile sets %s, which the binary does not read", name)
		}
	}
	// go mod download must come before the sources are copied, so it stays cached.
	download, sources := -1, -1
	for i, ins := range d.lines {
		if strings.Contains(ins, "go mod download") {
			download = i
		}
		if sources < 0 && strings.HasPrefix(ins, "COPY") && (strings.Contains(ins, "cmd/") || strings.Contains(ins, " . ")) {
			sources = i
		}
	}
	if download < 0 || sources < 0 || download > sources {
		t.Errorf("`go mod download` (instruction %d) must come before copying the sources (instruction %d)", download, sources)
	}
	for _, secretish := range []string{"PASSWORD", "SECRET", "TOKEN", "KEY"} {
		for name := range d.env {
			if strings.Contains(name, secretish) {
				t.Errorf("ENV %s looks like a secret baked into the image", name)
			}
		}
	}

	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(ignore))
	if !slices.Contains(lines, "*") || slices.Contains(lines, "!.git") || slices.Contains(lines, "!.data") {
		t.Errorf(".dockerignore must exclude everything but the build inputs (no .git, no .data): %q", lines)
	}
}

func TestCompose(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string
			Build       any
			Environment map[string]string
			Ports       []string
			Healthcheck struct{ Test []string }
			DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
		}
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	db, api := compose.Services["db"], compose.Services["api"]
	if !strings.HasPrefix(db.Image, "postgres:17") {
		t.Errorf("db image %q: want the official postgres image at the RDS module's default major (17)", db.Image)
	}
	if len(db.Healthcheck.Test) == 0 || !strings.Contains(strings.Join(db.Healthcheck.Test, " "), "pg_isready") {
		t.Errorf("db healthcheck %v: want pg_isready", db.Healthcheck.Test)
	}
	if api.Build == nil {
		t.Error("api is not built from the Dockerfile")
	}
	if dep, ok := api.DependsOn["db"]; !ok || dep.Condition != "service_healthy" {
		t.Errorf("api depends_on db = %+v, want condition service_healthy", api.DependsOn)
	}
	if !slices.ContainsFunc(api.Ports, func(p string) bool { return strings.HasSuffix(p, ":3000:3000") || p == "3000:3000" }) {
		t.Errorf("api ports %v: want the API on localhost:3000", api.Ports)
	}
	known := knownVariables(t)
	for name := range api.Environment {
		if !known[name] {
			t.Errorf("compose sets %s, which the binary does not read", name)
		}
	}
	if api.Environment["DB_HOST"] != "db" || api.Environment["DB_PASSWORD"] != db.Environment["POSTGRES_PASSWORD"] ||
		api.Environment["DB_USER"] != db.Environment["POSTGRES_USER"] || api.Environment["DB_NAME"] != db.Environment["POSTGRES_DB"] {
		t.Errorf("api database settings %v do not match the db service %v", api.Environment, db.Environment)
	}
	// Locally the container migrates and imports the image's dump itself; plain connections.
	if api.Environment["MIGRATE_ON_START"] != "true" || api.Environment["SEED_FILE"] != imageDump || api.Environment["DB_SSLMODE"] != "disable" {
		t.Errorf("compose api: MIGRATE_ON_START=%q SEED_FILE=%q DB_SSLMODE=%q, want true, %s and disable",
			api.Environment["MIGRATE_ON_START"], api.Environment["SEED_FILE"], api.Environment["DB_SSLMODE"], imageDump)
	}
}

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type container struct {
	cmd    *exec.Cmd
	addr   string
	output *lockedBuffer
	done   chan error
}

// image prepares the binary and the image's environment for entrypoint runs.
type image struct {
	binDir string
	env    map[string]string
	local  map[string]string // what compose adds: migrate and seed at start
}

// withLocal is extra on top of compose's settings.
func (img image) withLocal(extra map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range img.local {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func newImage(t *testing.T) image {
	t.Helper()
	d := parseDockerfile(t)
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "rates-image-"); built.err == nil {
			built.err = buildLikeDockerfile(d, built.dir)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	img := image{binDir: built.dir, env: d.env}
	dump, _ := filepath.Abs(filepath.Join(root, d.copies[imageDump]))
	// compose's settings, with the dump read from the build context.
	img.local = map[string]string{"MIGRATE_ON_START": "true", "SEED_FILE": dump}
	return img
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (img image) start(t *testing.T, databaseURL string, extraEnv map[string]string, args ...string) *container {
	t.Helper()
	c := &container{addr: freeAddr(t), output: &lockedBuffer{}, done: make(chan error, 1)}
	c.cmd = exec.Command(filepath.Join(root, "entrypoint.sh"), args...)
	env := []string{"PATH=" + img.binDir + ":/usr/bin:/bin", "DATABASE_URL=" + databaseURL, "HTTP_ADDR=" + c.addr}
	for k, v := range img.env {
		if k != "HTTP_ADDR" {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range extraEnv {
		env = append(env, k+"="+v)
	}
	c.cmd.Env = env
	c.cmd.Stdout, c.cmd.Stderr = c.output, c.output
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		_ = <-c.done // killed at the end of the test: its exit status says nothing
	})
	return c
}

func (c *container) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("entrypoint exited early: %v\n%s", err, c.output)
		default:
		}
		if resp, err := http.Get("http://" + c.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("not ready within 30s:\n%s", c.output)
}

func (c *container) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("entrypoint still running after %s:\n%s", timeout, c.output)
		return nil
	}
}

func TestEntrypointServesStopsAndDoesNotReimport(t *testing.T) {
	img := newImage(t)
	url := pgserver.NewDatabase(t, srv)

	c := img.start(t, url, img.withLocal(nil))
	c.waitReady(t)
	resp, err := http.Get("http://" + c.addr + "/rates?date_from=2026-01-01&date_to=2026-01-07&orig_code=CNSHA&dest_code=NLRTM")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Count(string(body), `"day"`) != 7 {
		t.Fatalf("GET /rates = %d %s", resp.StatusCode, body)
	}
	// The entrypoint replaced itself with the server: same PID, now the rates binary.
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.cmd.Process.Pid))
	if err != nil || filepath.Base(exe) != "rates" {
		t.Fatalf("entrypoint PID runs %q (%v), want the rates binary after exec", exe, err)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(t, 15*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0\n%s", err, c.output)
	}
	out := c.output.String()
	for _, want := range []string{`"msg":"migrate: done"`, `"msg":"seed: done"`, `"msg":"seed applied"`, `"msg":"stopped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("first start: output lacks %s\n%s", want, out)
		}
	}

	again := img.start(t, url, img.withLocal(nil))
	again.waitReady(t)
	out = again.output.String()
	if !strings.Contains(out, "seed already applied") || strings.Contains(out, `"msg":"seed applied"`) {
		t.Fatalf("second start re-imported the dump:\n%s", out)
	}
}

func TestEntrypointStopsOnCorruptSeed(t *testing.T) {
	img := newImage(t)
	corrupt := filepath.Join(t.TempDir(), "corrupt.sql")
	if err := os.WriteFile(corrupt, []byte("COPY public.prices (orig_code, dest_code, day, price) FROM stdin;\nA\tB\tnot-a-day\t1\n\\.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := img.start(t, pgserver.NewDatabase(t, srv), img.withLocal(map[string]string{"SEED_FILE": corrupt}))
	err := c.wait(t, 30*time.Second)
	if err == nil {
		t.Fatalf("entrypoint exited 0 with a corrupt SEED_FILE:\n%s", c.output)
	}
	out := c.output.String()
	if !strings.Contains(out, `"msg":"seed failed (exit status 1); the container stops"`) || !strings.Contains(out, "line 2") {
		t.Fatalf("no clear log line naming the failure:\n%s", out)
	}
	if strings.Contains(out, `"msg":"listening"`) {
		t.Fatalf("the server bound although the seed failed:\n%s", out)
	}
}

func TestEntrypointSubcommandsAndEmptySeed(t *testing.T) {
	img := newImage(t)
	c := img.start(t, "", nil, "version")
	if err := c.wait(t, 10*time.Second); err != nil || strings.TrimSpace(c.output.String()) != "container-test" {
		t.Fatalf("entrypoint version = %v %q, want the build's version", err, c.output)
	}

	url := pgserver.NewDatabase(t, srv)
	c = img.start(t, url, img.withLocal(map[string]string{"SEED_FILE": ""}))
	c.waitReady(t)
	if out := c.output.String(); !strings.Contains(out, "SEED_FILE is empty, skipping") || strings.Contains(out, "seed applied") {
		t.Fatalf("empty SEED_FILE did not skip seeding:\n%s", out)
	}

	// A one-off job through the image, as `docker run IMAGE seed --file ...`.
	dump, _ := filepath.Abs(filepath.Join(root, "db", "seed", "rates.sql"))
	job := img.start(t, url, nil, "seed", "--file", dump)
	if err := job.wait(t, 30*time.Second); err != nil || !strings.Contains(job.output.String(), "prices 50000") {
		t.Fatalf("seed job: %v\n%s", err, job.output)
	}
}

// Every subcommand other than serve goes straight to rates, even with compose's settings that
// make a start migrate and seed: the start-up steps belong to serving only.
func TestEntrypointPassesSubcommandsToRates(t *testing.T) {
	img := newImage(t)
	url := pgserver.NewDatabase(t, srv)
	dump, _ := filepath.Abs(filepath.Join(root, "db", "seed", "rates.sql"))
	for _, job := range [][]string{{"migrate", "up"}, {"seed", "--file", dump}} {
		if c := img.start(t, url, nil, job...); c.wait(t, 60*time.Second) != nil {
			t.Fatalf("%v: %s", job, c.output)
		}
	}
	tests := []struct {
		args     []string
		wantExit bool     // exit status 0
		want     []string // in the output
	}{
		{[]string{"batches", "list"}, true, []string{"KIND", "prices", "loaded", dump}},
		{[]string{"batches", "show", "1", "--json"}, true, []string{`"source_kind": "seed"`}},
		{[]string{"no-such-command"}, false, []string{"usage: rates <command>"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c := img.start(t, url, img.withLocal(nil), tt.args...)
			err := c.wait(t, 30*time.Second)
			out := c.output.String()
			if (err == nil) != tt.wantExit {
				t.Fatalf("entrypoint %v: exit %v, want success %t\n%s", tt.args, err, tt.wantExit, out)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("entrypoint %v: output lacks %s\n%s", tt.args, want, out)
				}
			}
			if strings.Contains(out, `"component":"entrypoint"`) {
				t.Errorf("entrypoint %v ran the start-up steps instead of passing the command on:\n%s", tt.args, out)
			}
		})
	}
}

// As in AWS (no MIGRATE_ON_START, no SEED_FILE): the container neither migrates nor seeds; on
// a database its migration task has not prepared it stops before listening, naming both
// versions, and once `migrate` ran as a one-off job it serves.
func TestEntrypointWithoutMigrateOnStart(t *testing.T) {
	img := newImage(t)
	url := pgserver.NewDatabase(t, srv)
	c := img.start(t, url, nil)
	if err := c.wait(t, 30*time.Second); err == nil {
		t.Fatalf("entrypoint exited 0 on an empty database:\n%s", c.output)
	}
	out := c.output.String()
	if !strings.Contains(out, "database schema is at version 0, this binary needs version") || strings.Contains(out, `"msg":"listening"`) {
		t.Fatalf("want a refusal naming the versions before listening:\n%s", out)
	}
	job := img.start(t, url, nil, "migrate", "up")
	if err := job.wait(t, 30*time.Second); err != nil {
		t.Fatalf("migrate job: %v\n%s", err, job.output)
	}
	served := img.start(t, url, nil)
	served.waitReady(t)
	if out := served.output.String(); strings.Contains(out, "migrate: done") || strings.Contains(out, "seed: done") {
		t.Fatalf("the container migrated or seeded without being asked:\n%s", out)
	}
}

// Shell scripts in the repository pass shellcheck.
func TestShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Fatal("shellcheck is not installed (apt-get install shellcheck; .ci/run installs it)")
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "*.sh", ".ci/run").Output()
	if err != nil {
		t.Fatal(err)
	}
	var scripts []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		scripts = append(scripts, filepath.Join(root, sc.Text()))
	}
	if !slices.Contains(scripts, filepath.Join(root, "entrypoint.sh")) {
		t.Fatalf("entrypoint.sh is not tracked by git: %v", scripts)
	}
	cmd := exec.CommandContext(context.Background(), "shellcheck", scripts...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, b)
	}
}
