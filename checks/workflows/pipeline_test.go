package workflows

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stepIndex is the position of the first step of j for which match holds, or -1.
func stepIndex(j *job, match func(*step) bool) int {
	for i, s := range j.Steps {
		if match(s) {
			return i
		}
	}
	return -1
}

func runs(fragment string) func(*step) bool {
	return func(s *step) bool { return strings.Contains(s.Run, fragment) }
}

// One environment's deployment, once its plan is approved, is one ordered job: the approved
// Terraform plan, then the migration task (which must succeed before any service changes), the
// seed and the worker's start check, then the services, then the smoke test, and a rollback when
// a rollout or the smoke test fails.
func TestDeployOrder(t *testing.T) {
	all := loadWorkflows(t)
	w, j := deployJob(t, all)

	checkout := stepIndex(j, func(s *step) bool { return strings.HasPrefix(s.Uses, "actions/checkout@") })
	apply := stepIndex(j, runs(`.github/scripts/terraform-apply.sh "${GITHUB_WORKSPACE}/target/terraform" "$ENVIRONMENT"`))
	previous := stepIndex(j, runs("--query 'services[0].taskDefinition'"))
	register := stepIndex(j, runs(`register "$MIGRATE_TASK_DEFINITION_FAMILY"`))
	migrate := stepIndex(j, runs(`.github/scripts/run-one-off-task.sh migrate "$TASK_DEFINITION" "$ECS_SERVICE"`))
	seed := stepIndex(j, runs(`.github/scripts/run-one-off-task.sh seed "$TASK_DEFINITION" "$ECS_SERVICE" '["seed"]'`))
	workerCheck := stepIndex(j, runs(`.github/scripts/run-one-off-task.sh worker-check "$TASK_DEFINITION" "$WORKER_SERVICE" '["worker", "--check"]'`))
	firstRollout := stepIndex(j, func(s *step) bool { return strings.HasPrefix(s.Uses, "aws-actions/amazon-ecs-deploy-task-definition@") })
	smoke := stepIndex(j, runs(`.github/scripts/smoke.sh "$API_URL" "$ALB_DNS_NAME"`))
	rollback := stepIndex(j, runs(`--task-definition "$API_PREVIOUS"`))

	order := []struct {
		what string
		at   int
	}{
		{"checkout of the commit", checkout}, {"terraform apply", apply},
		{"recording the running revisions", previous}, {"registering the one-off task definitions", register},
		{"migration task", migrate}, {"seed task", seed}, {"worker start check", workerCheck},
		{"service rollout", firstRollout}, {"smoke test", smoke}, {"rollback", rollback},
	}
	for i, o := range order {
		if o.at < 0 {
			t.Errorf("%s: job %s has no %s step", w.path, j.id, o.what)
			continue
		}
		if i > 0 && order[i-1].at >= 0 && order[i-1].at >= o.at {
			t.Errorf("%s: the %s (step %d) must come after the %s (step %d)", w.path, o.what, o.at, order[i-1].what, order[i-1].at)
		}
	}
	if t.Failed() {
		return
	}

	// The scripts come from the workflow's own commit: the first checkout names no other ref.
	if ref := j.Steps[checkout].With["ref"]; ref != "" {
		t.Errorf("%s: the first checkout takes ref %q; the scripts must be the workflow's own", w.path, ref)
	}
	// Nothing between the apply and the rollout may be skipped on failure or allowed to fail:
	// a failed migration, seed or start check stops the job before the services change.
	for _, i := range []int{apply, migrate, workerCheck, smoke} {
		s := j.Steps[i]
		if s.If != "" && strings.Contains(s.If, "always()") || strings.Contains(s.If, "failure()") {
			t.Errorf("%s: step %q runs even after a failure (if: %q)", w.path, s.label(), s.If)
		}
		if s.ContinueOnError != "" && s.ContinueOnError != "false" {
			t.Errorf("%s: step %q may fail without failing the job", w.path, s.label())
		}
	}
	if j.Steps[migrate].If != "" || j.Steps[workerCheck].If != "" {
		t.Errorf("%s: the migration and the worker start check run in every environment (if: %q, %q)", w.path, j.Steps[migrate].If, j.Steps[workerCheck].If)
	}
	if !strings.Contains(j.Steps[seed].If, "steps.one-off.outputs.seed_file != ''") {
		t.Errorf("%s: the seed task runs only where the workspace sets SEED_FILE (if: %q)", w.path, j.Steps[seed].If)
	}
	rb := j.Steps[rollback]
	if !strings.Contains(rb.If, "failure()") || !strings.Contains(rb.Run, `--service "$WORKER_SERVICE" --task-definition "$WORKER_PREVIOUS"`) {
		t.Errorf("%s: the rollback must run on failure and put both services back (if: %q)", w.path, rb.If)
	}
	if normalizeExpr(rb.Env["API_PREVIOUS"]) != "${{ steps.previous.outputs.api }}" || normalizeExpr(rb.Env["WORKER_PREVIOUS"]) != "${{ steps.previous.outputs.worker }}" {
		t.Errorf("%s: the rollback must use the revisions recorded before the rollout, got %v", w.path, rb.Env)
	}
	if normalizeExpr(j.Steps[smoke].Env["API_URL"]) != "${{ steps.terraform.outputs.api_url }}" ||
		normalizeExpr(j.Steps[smoke].Env["ALB_DNS_NAME"]) != "${{ steps.terraform.outputs.alb_dns_name }}" {
		t.Errorf("%s: the smoke test must call the API's URL (terraform output api_url) through the load balancer (alb_dns_name), got %v", w.path, j.Steps[smoke].Env)
	}
	if j.Steps[apply].ID != "terraform" || !strings.Contains(j.Steps[apply].Run, `echo "api_url=`) || !strings.Contains(j.Steps[apply].Run, `echo "alb_dns_name=`) {
		t.Errorf("%s: the apply step (id terraform) must output api_url and alb_dns_name", w.path)
	}

	// Terraform runs only here on pushes: terraform.yml must not apply on its own.
	if _, ok := all["terraform.yml"].events(t)["push"]; ok {
		t.Errorf("terraform.yml: a push trigger would apply outside the ordered deployment")
	}
}

// The image carries the RDS CA bundle: the build gets it as the named context the Dockerfile's
// rds-ca stage stands for.
func TestImageBuildGetsTheRDSBundle(t *testing.T) {
	w := loadWorkflows(t)["deploy.yml"]
	build := w.Jobs["build"]
	fetch := stepIndex(build, runs("https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"))
	docker := stepIndex(build, runs(`--build-context "rds-ca=${RUNNER_TEMP}/rds-ca"`))
	if fetch < 0 || docker < 0 || fetch > docker {
		t.Errorf("%s: the build job must fetch the RDS bundle into ${RUNNER_TEMP}/rds-ca, then build with --build-context rds-ca=... (steps %d, %d)", w.path, fetch, docker)
	}
}

// The one-off tasks' family follows Terraform's naming contract.
func TestMigrationTaskNameMatchesTerraform(t *testing.T) {
	all := loadWorkflows(t)
	w, j := deployJob(t, all)
	for _, ws := range terraformWorkspaces(t) {
		got := resolve(t, w.path+" env MIGRATE_TASK_DEFINITION_FAMILY", j.Env["MIGRATE_TASK_DEFINITION_FAMILY"], j.Env, ws)
		families := map[string]bool{}
		for _, td := range tfRoot(t, ws).resources("aws_ecs_task_definition") {
			families[td.stringAttr(t, td.block.Body, "family")] = true
		}
		if !families[got] || got != fmt.Sprintf("rates-%s-migrate", ws) {
			t.Errorf("%s (%s): MIGRATE_TASK_DEFINITION_FAMILY %q is not a task definition family of Terraform %v", w.path, ws, got, families)
		}
	}
}

// apiStandIn answers the smoke script's requests as the API does, with readyz and rates given.
func apiStandIn(readyz int, rates string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(readyz)
			if readyz == 200 {
				fmt.Fprint(w, `{"status":"ready"}`)
			} else {
				fmt.Fprint(w, `{"status":"unavailable"}`)
			}
		case "/":
			fmt.Fprint(w, `{"message":"Hello world!"}`)
		case "/rates":
			fmt.Fprint(w, rates)
		default:
			http.NotFound(w, r)
		}
	})
}

const smokeRates = `{"rates":[{"count":42,"day":"2026-01-03","price":2315.5}]}`

func runSmoke(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	script := filepath.Join(repoRoot(t), ".github", "scripts", "smoke.sh")
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Env = append(append(os.Environ(), "SMOKE_WAIT_SECONDS=0"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The smoke script, against a stand-in of the load balancer: it passes on the right answers and
// names the first wrong one otherwise.
func TestSmokeScript(t *testing.T) {
	tests := []struct {
		name      string
		readyz    int
		rates     string
		expect    string
		wantOK    bool
		wantError string
	}{
		{"healthy, known answer", 200, smokeRates, smokeRates, true, ""},
		{"healthy, any list of days", 200, smokeRates, "", true, ""},
		{"not ready", 503, smokeRates, "", false, "GET /readyz: 503"},
		{"wrong answer", 200, `{"rates":[{"count":1,"day":"2026-01-03","price":null}]}`, smokeRates, false, "want " + smokeRates},
		{"not a list of days", 200, `{"error":"x"}`, "", false, "not a list of days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(apiStandIn(tt.readyz, tt.rates))
			defer srv.Close()
			out, err := runSmoke(t, []string{"SMOKE_RATES_EXPECT=" + tt.expect}, srv.URL)
			if (err == nil) != tt.wantOK || !strings.Contains(out, tt.wantError) {
				t.Fatalf("smoke.sh: err = %v, want ok %t and output containing %q:\n%s", err, tt.wantOK, tt.wantError, out)
			}
		})
	}
}

// testCA signs server certificates for the names given; its PEM file is what curl trusts
// (CURL_CA_BUNDLE), as it trusts the public CAs that sign ACM's certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rates test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

func (ca *testCA) serverCert(t *testing.T, dnsName string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// The smoke test of an environment with a domain (prod): the load balancer's HTTPS listener
// serves the certificate of the API's domain, so the script must call https://<domain> and
// connect to the load balancer, checking the certificate as a client does. Here the load
// balancer is a local HTTPS server on 127.0.0.1 with a certificate for api.rates.test.
func TestSmokeScriptChecksTheDomainsCertificate(t *testing.T) {
	ca := newTestCA(t)
	serve := func(t *testing.T, certName string) *httptest.Server {
		srv := httptest.NewUnstartedServer(apiStandIn(200, smokeRates))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t, certName)}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	port := func(srv *httptest.Server) string { return srv.URL[strings.LastIndex(srv.URL, ":")+1:] }
	env := []string{"CURL_CA_BUNDLE=" + ca.file, "SMOKE_RATES_EXPECT=" + smokeRates}

	srv := serve(t, "api.rates.test")
	// As the deploy calls it: the domain's URL, connecting to the load balancer's address.
	if out, err := runSmoke(t, env, "https://api.rates.test:"+port(srv), "127.0.0.1"); err != nil ||
		!strings.Contains(out, "passed") {
		t.Fatalf("smoke.sh through the domain: %v\n%s", err, out)
	}
	// The load balancer's own name is not on the certificate: this is what failed every prod deploy.
	if out, err := runSmoke(t, env, "https://127.0.0.1:"+port(srv)); err == nil ||
		!strings.Contains(out, "GET /readyz: no answer") || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("smoke.sh against the load balancer's name = %v, want a certificate failure:\n%s", err, out)
	}
	// A certificate for another name fails the same way.
	other := serve(t, "other.rates.test")
	if out, err := runSmoke(t, env, "https://api.rates.test:"+port(other), "127.0.0.1"); err == nil ||
		!strings.Contains(out, "api.rates.test") {
		t.Fatalf("smoke.sh with another domain's certificate = %v, want a failure:\n%s", err, out)
	}
	// The address does not make an unverified certificate pass: without the CA, it fails too.
	if out, err := runSmoke(t, []string{"CURL_CA_BUNDLE=" + filepath.Join(t.TempDir(), "empty.pem")}, "https://api.rates.test:"+port(srv), "127.0.0.1"); err == nil {
		t.Fatalf("smoke.sh without trusting the certificate passed:\n%s", out)
	}
}
