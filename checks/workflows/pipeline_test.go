package workflows

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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

// One environment's deployment is one ordered job: Terraform of the same commit, then the
// migration task (which must succeed before any service changes), the seed and the worker's start
// check, then the services, then the smoke test, and a rollback when a rollout or the smoke test
// fails.
func TestDeployOrder(t *testing.T) {
	all := loadWorkflows(t)
	w, j := deployJob(t, all)

	checkout := stepIndex(j, func(s *step) bool { return strings.HasPrefix(s.Uses, "actions/checkout@") })
	apply := stepIndex(j, runs(`terraform -chdir=terraform apply -input=false -lock-timeout=10m "${RUNNER_TEMP}/tf/deploy.tfplan"`))
	workspace := stepIndex(j, runs(`terraform -chdir=terraform workspace select "$ENVIRONMENT"`))
	previous := stepIndex(j, runs("--query 'services[0].taskDefinition'"))
	register := stepIndex(j, runs(`register "$MIGRATE_TASK_DEFINITION_FAMILY"`))
	migrate := stepIndex(j, runs(`.github/scripts/run-one-off-task.sh migrate "$TASK_DEFINITION" "$ECS_SERVICE"`))
	seed := stepIndex(j, runs(`.github/scripts/run-one-off-task.sh seed "$TASK_DEFINITION" "$ECS_SERVICE" '["seed"]'`))
	workerCheck := stepIndex(j, runs(`.github/scripts/run-one-off-task.sh worker-check "$TASK_DEFINITION" "$WORKER_SERVICE" '["worker", "--check"]'`))
	firstRollout := stepIndex(j, func(s *step) bool { return strings.HasPrefix(s.Uses, "aws-actions/amazon-ecs-deploy-task-definition@") })
	smoke := stepIndex(j, runs(`.github/scripts/smoke.sh "$ALB_URL"`))
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

	if workspace != apply || !strings.Contains(j.Steps[apply].Run, "-detailed-exitcode") {
		t.Errorf("%s: the apply step must select the environment's workspace and plan before applying", w.path)
	}
	// The apply uses the commit of this run: the checkout names no other ref.
	if ref := j.Steps[checkout].With["ref"]; ref != "" {
		t.Errorf("%s: the checkout takes ref %q; the apply must be of the deployed commit", w.path, ref)
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
	if normalizeExpr(j.Steps[smoke].Env["ALB_URL"]) != "${{ steps.terraform.outputs.alb_url }}" {
		t.Errorf("%s: the smoke test must go through the environment's load balancer (terraform output alb_url)", w.path)
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

// The smoke script, against a stand-in of the load balancer: it passes on the right answers and
// names the first wrong one otherwise.
func TestSmokeScript(t *testing.T) {
	const good = `{"rates":[{"count":42,"day":"2026-01-03","price":2315.5}]}`
	tests := []struct {
		name      string
		readyz    int
		rates     string
		expect    string
		wantOK    bool
		wantError string
	}{
		{"healthy, known answer", 200, good, good, true, ""},
		{"healthy, any list of days", 200, good, "", true, ""},
		{"not ready", 503, good, "", false, "GET /readyz: 503"},
		{"wrong answer", 200, `{"rates":[{"count":1,"day":"2026-01-03","price":null}]}`, good, false, "want " + good},
		{"not a list of days", 200, `{"error":"x"}`, "", false, "not a list of days"},
	}
	script := filepath.Join(repoRoot(t), ".github", "scripts", "smoke.sh")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/readyz":
					w.WriteHeader(tt.readyz)
					if tt.readyz == 200 {
						fmt.Fprint(w, `{"status":"ready"}`)
					} else {
						fmt.Fprint(w, `{"status":"unavailable"}`)
					}
				case "/":
					fmt.Fprint(w, `{"message":"Hello world!"}`)
				case "/rates":
					fmt.Fprint(w, tt.rates)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			cmd := exec.Command("bash", script, srv.URL)
			cmd.Env = append(os.Environ(), "SMOKE_WAIT_SECONDS=0", "SMOKE_RATES_EXPECT="+tt.expect)
			out, err := cmd.CombinedOutput()
			if (err == nil) != tt.wantOK || !strings.Contains(string(out), tt.wantError) {
				t.Fatalf("smoke.sh: err = %v, want ok %t and output containing %q:\n%s", err, tt.wantOK, tt.wantError, out)
			}
		})
	}
}
