package workflows

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The reusable workflow that deploys one environment (called by deploy.yml).
const deployEnvironmentFile = "deploy-environment.yml"

// Actions whose major version is prescribed; any other action must still be pinned to a version
// tag or a commit SHA.
var requiredMajors = map[string]int{
	"actions/checkout":                              5,
	"aws-actions/configure-aws-credentials":         6,
	"aws-actions/amazon-ecr-login":                  2,
	"aws-actions/amazon-ecs-render-task-definition": 1,
	"aws-actions/amazon-ecs-deploy-task-definition": 2,
	"hashicorp/setup-terraform":                     4,
}

// Minimum full versions, when an action is pinned to one (a major tag like @v2 follows the
// latest release of that major).
var minimumVersions = map[string][3]int{
	// 2.6.2 fixes the handling of the deployment circuit breaker while waiting for stability.
	"aws-actions/amazon-ecs-deploy-task-definition": {2, 6, 2},
}

var (
	shaRE     = regexp.MustCompile(`^[0-9a-f]{40}$`)
	versionRE = regexp.MustCompile(`^v(\d+)(?:\.(\d+))?(?:\.(\d+))?$`)
)

func TestNoPullRequestTarget(t *testing.T) {
	for _, w := range loadWorkflows(t) {
		for event := range w.events(t) {
			if event == "pull_request_target" {
				t.Errorf("%s runs on pull_request_target: that runs with the base repository's secrets and write token on code of forks", w.path)
			}
		}
	}
}

func TestDefaultPermissionsReadOnly(t *testing.T) {
	for _, w := range loadWorkflows(t) {
		got := permissions(&w.Permissions)
		if len(got) != 1 || got["contents"] != "read" {
			t.Errorf("%s: top-level permissions = %v, want exactly contents: read (jobs widen it where needed)", w.path, got)
		}
	}
}

// Deployments start when ci succeeded on a push to the deployment branch (workflow_run), or by
// hand; never on the push itself, before CI has run.
func TestDeployTrigger(t *testing.T) {
	all := loadWorkflows(t)
	w := all["deploy.yml"]
	events := w.events(t)

	run, ok := events["workflow_run"]
	if !ok {
		t.Fatalf("%s: no workflow_run trigger: a deployment must wait for ci", w.path)
	}
	if got := stringList(mapping(run, "workflows")); !slices.Equal(got, []string{all["ci.yml"].Name}) {
		t.Errorf("%s: workflow_run workflows = %v, want [%s] (the name of ci.yml)", w.path, got, all["ci.yml"].Name)
	}
	if got := stringList(mapping(run, "types")); !slices.Equal(got, []string{"completed"}) {
		t.Errorf("%s: workflow_run types = %v, want [completed]", w.path, got)
	}
	trunk := deployBranch(t, all)
	// The other places that name the deployment branch name the same one.
	guard := false
	for _, j := range w.sortedJobs() {
		for _, s := range j.Steps {
			guard = guard || strings.Contains(s.Run, "refs/heads/"+trunk)
		}
	}
	if !guard {
		t.Errorf("%s: no step refuses to deploy refs other than refs/heads/%s", w.path, trunk)
	}
	if group, cancel := concurrency(&all["ci.yml"].Concurrency); !strings.Contains(cancel, "refs/heads/"+trunk) {
		t.Errorf("ci.yml: concurrency %q cancel-in-progress %q: runs on %s, the deployment branch, must not be cancelled", group, cancel, trunk)
	}

	for event := range events {
		switch event {
		case "workflow_run", "workflow_dispatch":
		default:
			t.Errorf("%s: unexpected trigger %s (deployments start after ci of %s, or by hand)", w.path, event, trunk)
		}
	}

	dispatch, ok := events["workflow_dispatch"]
	if !ok {
		t.Fatalf("%s: no workflow_dispatch trigger", w.path)
	}
	inputs := mapping(dispatch, "inputs")
	env := mapping(inputs, "environment")
	if env == nil || mapping(env, "type").Value != "choice" {
		t.Fatalf("%s: workflow_dispatch needs a choice input `environment`", w.path)
	}
	options := stringList(mapping(env, "options"))
	sort.Strings(options)
	if workspaces := terraformWorkspaces(t); !slices.Equal(options, workspaces) {
		t.Errorf("%s: environment options %v, Terraform workspaces %v", w.path, options, workspaces)
	}
	tag := mapping(inputs, "image_tag")
	if tag == nil {
		t.Fatalf("%s: workflow_dispatch needs an optional `image_tag` input (rollback)", w.path)
	}
	if r := mapping(tag, "required"); r != nil && r.Value == "true" {
		t.Errorf("%s: image_tag must be optional", w.path)
	}
}

// Only a ci run that succeeded, for a push to the deployment branch of this repository, deploys
// its commit: workflow_run fires for every completed run, failed ones and pull requests from
// forks with a branch of the same name included. A dispatch that builds needs a successful ci
// run of its commit too.
func TestDeployWaitsForCI(t *testing.T) {
	all := loadWorkflows(t)
	w := all["deploy.yml"]
	prepare := w.Jobs["prepare"]
	if prepare == nil || len(prepare.Steps) == 0 {
		t.Fatalf("%s: no prepare job", w.path)
	}
	trunk := deployBranch(t, all)
	var guard *step
	for _, s := range prepare.Steps {
		if strings.Contains(s.Run, "CI_CONCLUSION") {
			guard = s
		}
	}
	if guard == nil {
		t.Fatalf("%s: no prepare step checks the ci run", w.path)
	}
	for name, want := range map[string]string{
		"CI_CONCLUSION": "${{ github.event.workflow_run.conclusion }}",
		"CI_EVENT":      "${{ github.event.workflow_run.event }}",
		"CI_BRANCH":     "${{ github.event.workflow_run.head_branch }}",
		"CI_REPOSITORY": "${{ github.event.workflow_run.head_repository.full_name }}",
	} {
		if got := normalizeExpr(guard.Env[name]); got != want {
			t.Errorf("%s: env %s = %q, want %q", w.path, name, got, want)
		}
	}
	for _, fragment := range []string{
		`"$CI_CONCLUSION" != success`, `"$CI_EVENT" != push`, `"$CI_BRANCH" != ` + trunk, `"$CI_REPOSITORY" != "$GITHUB_REPOSITORY"`,
		"gh run list", "--workflow ci.yml", "--status success", "--branch " + trunk,
	} {
		if !strings.Contains(guard.Run, fragment) {
			t.Errorf("%s: step %q does not check %s", w.path, guard.label(), fragment)
		}
	}
	if p := permissions(&prepare.Permissions); p["actions"] != "read" || len(p) != 2 || p["contents"] != "read" {
		t.Errorf("%s: prepare permissions %v, want actions: read (gh run list) and contents: read", w.path, p)
	}
	for env, j := range deployCallers(t, all) {
		if !slices.Contains(stringList(&j.Needs), "prepare") || !strings.Contains(j.If, "needs.prepare.result == 'success'") {
			t.Errorf("%s: job %s (%s) must run only after prepare succeeded (if %q)", w.path, j.id, env, j.If)
		}
	}
}

// deployBranch is the one branch whose successful ci runs deploy (deploy.yml's workflow_run).
func deployBranch(t *testing.T, all map[string]*workflow) string {
	t.Helper()
	w := all["deploy.yml"]
	branches := stringList(mapping(w.events(t)["workflow_run"], "branches"))
	if len(branches) != 1 || strings.ContainsAny(branches[0], "*?[!") {
		t.Fatalf("%s: workflow_run branches = %v, want exactly one branch, without patterns", w.path, branches)
	}
	return branches[0]
}

// deployCallers returns the jobs of deploy.yml that call deploy-environment.yml, by environment.
func deployCallers(t *testing.T, all map[string]*workflow) map[string]*job {
	t.Helper()
	w := all["deploy.yml"]
	callers := map[string]*job{}
	for _, j := range w.sortedJobs() {
		if !j.callsWorkflow(deployEnvironmentFile) {
			continue
		}
		env := j.With["environment"]
		if env == "" || strings.Contains(env, "${{") {
			t.Fatalf("%s: job %s must pass a literal environment to %s", w.path, j.id, deployEnvironmentFile)
		}
		if callers[env] != nil {
			t.Fatalf("%s: two jobs deploy %s", w.path, env)
		}
		callers[env] = j
	}
	return callers
}

// deployJob returns the job of deploy-environment.yml that applies the approved plan and deploys.
func deployJob(t *testing.T, all map[string]*workflow) (*workflow, *job) {
	t.Helper()
	return environmentJob(t, all, "deploy")
}

// deployPlanJob returns the job of deploy-environment.yml that saves the plan to approve.
func deployPlanJob(t *testing.T, all map[string]*workflow) (*workflow, *job) {
	t.Helper()
	return environmentJob(t, all, "plan")
}

func environmentJob(t *testing.T, all map[string]*workflow, id string) (*workflow, *job) {
	t.Helper()
	w := all[deployEnvironmentFile]
	if w == nil {
		t.Fatalf(".github/workflows/%s is missing", deployEnvironmentFile)
	}
	if len(w.Jobs) != 2 || w.Jobs[id] == nil {
		t.Fatalf("%s: want the jobs plan and deploy, found %v", w.path, keysOfJobs(w))
	}
	return w, w.Jobs[id]
}

func keysOfJobs(w *workflow) []string {
	var ids []string
	for _, j := range w.sortedJobs() {
		ids = append(ids, j.id)
	}
	return ids
}

func TestDeployJobsPerEnvironment(t *testing.T) {
	all := loadWorkflows(t)
	callers := deployCallers(t, all)
	var envs []string
	for env := range callers {
		envs = append(envs, env)
	}
	sort.Strings(envs)
	if workspaces := terraformWorkspaces(t); !slices.Equal(envs, workspaces) {
		t.Errorf("deploy.yml deploys to %v, Terraform has the workspaces %v", envs, workspaces)
	}

	// The deployments form one chain: the first follows every push, and each other one needs
	// exactly one deployment and runs after its success, so a push goes through the environments
	// in order and stops at the first failure.
	envOfJob := map[string]string{}
	for env, j := range callers {
		envOfJob[j.id] = env
	}
	var heads []string
	follows := map[string]string{} // previous environment -> the one that follows it
	for _, env := range envs {
		j := callers[env]
		var previous []string
		for _, need := range stringList(&j.Needs) {
			if e, ok := envOfJob[need]; ok {
				previous = append(previous, e)
			}
		}
		switch len(previous) {
		case 0:
			heads = append(heads, env)
			if !strings.Contains(j.If, "github.event_name == 'workflow_run'") {
				t.Errorf("deploy.yml: job %s deploys %s first, so it must run after every successful ci of master (if: %q)", j.id, env, j.If)
			}
		case 1:
			if !strings.Contains(j.If, "needs."+callers[previous[0]].id+".result == 'success'") {
				t.Errorf("deploy.yml: %s must run after the success of the %s deployment (if %q)", env, previous[0], j.If)
			}
			if other, dup := follows[previous[0]]; dup {
				t.Errorf("deploy.yml: both %s and %s follow %s; the deployments must form one chain", other, env, previous[0])
			}
			follows[previous[0]] = env
		default:
			t.Errorf("deploy.yml: %s needs several deployments %v; the deployments must form one chain", env, previous)
		}
	}
	if len(heads) != 1 {
		t.Errorf("deploy.yml: deployments %v start on their own, want exactly one that the others follow", heads)
	} else {
		chain := []string{heads[0]}
		for next, ok := follows[heads[0]]; ok && len(chain) <= len(envs); next, ok = follows[next] {
			chain = append(chain, next)
		}
		if len(chain) != len(envs) {
			t.Errorf("deploy.yml: the chain of deployments %v does not reach every environment %v", chain, envs)
		}
	}

	w, j := deployJob(t, all)
	_, plan := deployPlanJob(t, all)
	for _, jj := range []*job{plan, j} {
		if got := normalizeExpr(jj.environmentName()); got != "${{ inputs.environment }}" {
			t.Errorf("%s: job %s runs in GitHub environment %q, want ${{ inputs.environment }} (required reviewers of staging and prod)", w.path, jj.id, got)
		}
	}
	group, cancel := concurrency(&j.Concurrency)
	if normalizeExpr(group) != "deploy-${{ inputs.environment }}" || cancel != "false" {
		t.Errorf("%s: concurrency group %q cancel-in-progress %s, want deploy-${{ inputs.environment }} and false", w.path, group, cancel)
	}
}

func TestDeployHasIDTokenWrite(t *testing.T) {
	all := loadWorkflows(t)
	callers := deployCallers(t, all)
	if len(callers) == 0 {
		t.Fatalf("deploy.yml: no job calls %s", deployEnvironmentFile)
	}
	for env, j := range callers {
		p := permissions(&j.Permissions)
		if p["id-token"] != "write" || p["contents"] != "read" {
			t.Errorf("deploy.yml: job %s (%s) permissions %v, want id-token: write and contents: read", j.id, env, p)
		}
	}
	w := all[deployEnvironmentFile]
	for _, j := range w.sortedJobs() {
		if p := permissions(&j.Permissions); p["id-token"] != "write" || p["contents"] != "read" || len(p) != 2 {
			t.Errorf("%s: job %s permissions %v, want exactly id-token: write and contents: read", w.path, j.id, p)
		}
	}
}

// roleJobs reports, per workflow file, the jobs that assume a role with OIDC: jobs with a
// configure-aws-credentials step that has role-to-assume.
func assumesRole(j *job) bool {
	for _, s := range j.stepsUsing("aws-actions/configure-aws-credentials") {
		if s.With["role-to-assume"] != "" {
			return true
		}
	}
	return false
}

func TestIDTokenOnlyWhereRolesAreAssumed(t *testing.T) {
	all := loadWorkflows(t)
	for _, w := range all {
		for _, j := range w.sortedJobs() {
			needs := assumesRole(j)
			if j.Uses != "" {
				file, ok := strings.CutPrefix(j.Uses, "./.github/workflows/")
				if !ok {
					t.Errorf("%s: job %s calls %s; only the local reusable workflows are expected", w.path, j.id, j.Uses)
					continue
				}
				called := all[file]
				if called == nil {
					t.Errorf("%s: job %s calls a missing workflow %s", w.path, j.id, j.Uses)
					continue
				}
				for _, cj := range called.Jobs {
					needs = needs || assumesRole(cj)
				}
			}
			has := permissions(&j.Permissions)["id-token"] == "write"
			switch {
			case needs && !has:
				t.Errorf("%s: job %s assumes an AWS role through OIDC but lacks permissions id-token: write", w.path, j.id)
			case has && !needs:
				t.Errorf("%s: job %s has id-token: write but assumes no role", w.path, j.id)
			}
		}
	}
}

// Every AWS credential of every workflow is a role assumed through GitHub OIDC, from a
// configuration variable: no step takes access keys, and no workflow reads a secret.
func TestAWSCredentialsOIDCOnly(t *testing.T) {
	roleRE := regexp.MustCompile(`^\$\{\{ (vars\.AWS_[A-Z_]+_ROLE_ARN|env\.ROLE_ARN) \}\}$`)
	count := 0
	for _, w := range loadWorkflows(t) {
		data, err := os.ReadFile(filepath.Join(repoRoot(t), w.path))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "secrets.") {
			t.Errorf("%s reads a secret; AWS credentials come from OIDC roles only", w.path)
		}
		for _, j := range w.sortedJobs() {
			if j.Secrets.Kind != 0 {
				t.Errorf("%s: job %s passes secrets", w.path, j.id)
			}
			for _, s := range j.stepsUsing("aws-actions/configure-aws-credentials") {
				count++
				if !roleRE.MatchString(normalizeExpr(s.With["role-to-assume"])) || s.If != "" {
					t.Errorf("%s: job %s, step %q: role-to-assume %q (if %q), want a role variable, always", w.path, j.id, s.label(), s.With["role-to-assume"], s.If)
				}
				for _, input := range []string{"aws-access-key-id", "aws-secret-access-key", "aws-session-token", "allowed-account-ids"} {
					if s.With[input] != "" {
						t.Errorf("%s: job %s, step %q: %s is set", w.path, j.id, s.label(), input)
					}
				}
				if normalizeExpr(s.With["aws-region"]) != "${{ vars.AWS_REGION }}" {
					t.Errorf("%s: job %s: aws-region = %q, want ${{ vars.AWS_REGION }}", w.path, j.id, s.With["aws-region"])
				}
			}
		}
	}
	if count == 0 {
		t.Fatal("no job configures AWS credentials")
	}
}

func TestImageTagIsCommitSHA(t *testing.T) {
	all := loadWorkflows(t)
	w := all["deploy.yml"]

	// The tag: the commit SHA, unless a rollback names one.
	prepare := w.Jobs["prepare"]
	if prepare == nil {
		t.Fatalf("%s: no prepare job", w.path)
	}
	out := normalizeExpr(prepare.Outputs["image_tag"])
	m := regexp.MustCompile(`^\$\{\{ steps\.([A-Za-z0-9_-]+)\.outputs\.image_tag \}\}$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: prepare's output image_tag = %q, want a step output", w.path, out)
	}
	var tagStep *step
	for _, s := range prepare.Steps {
		if s.ID == m[1] {
			tagStep = s
		}
	}
	if tagStep == nil {
		t.Fatalf("%s: prepare has no step %s", w.path, m[1])
	}
	// The commit: the one ci checked (workflow_run), the dispatched one, or a rollback's tag; it
	// must be a full SHA, and it is both the image tag and the commit built and applied.
	for name, want := range map[string]string{
		"CI_COMMIT":    "${{ github.event.workflow_run.head_sha }}",
		"ROLLBACK_TAG": "${{ inputs.image_tag }}",
	} {
		if got := normalizeExpr(tagStep.Env[name]); got != want {
			t.Errorf("%s: step %s: env %s = %q, want %q", w.path, tagStep.label(), name, got, want)
		}
	}
	for _, fragment := range []string{
		"commit=$CI_COMMIT", "commit=$ROLLBACK_TAG", "commit=$GITHUB_SHA", `[[ ! "$commit" =~ ^[0-9a-f]{40}$ ]]`,
		`echo "image_tag=${commit}"`, `echo "commit=${commit}"`,
	} {
		if !strings.Contains(tagStep.Run, fragment) {
			t.Errorf("%s: step %s does not run %s", w.path, tagStep.label(), fragment)
		}
	}
	if got := normalizeExpr(prepare.Outputs["commit"]); got != "${{ steps."+m[1]+".outputs.commit }}" {
		t.Errorf("%s: prepare's output commit = %q", w.path, got)
	}

	// The build: that commit, tagged and versioned with its SHA.
	build := w.Jobs["build"]
	if build == nil {
		t.Fatalf("%s: no build job", w.path)
	}
	if got := normalizeExpr(build.Env["IMAGE_TAG"]); got != "${{ needs.prepare.outputs.commit }}" {
		t.Errorf("%s: build IMAGE_TAG = %q, want ${{ needs.prepare.outputs.commit }}", w.path, got)
	}
	if checkouts := build.stepsUsing("actions/checkout"); len(checkouts) != 1 || normalizeExpr(checkouts[0].With["ref"]) != "${{ needs.prepare.outputs.commit }}" {
		t.Errorf("%s: the build must check out ${{ needs.prepare.outputs.commit }} (workflow_run's own commit is master's newest)", w.path)
	}
	var built bool
	for _, s := range build.Steps {
		if strings.Contains(s.Run, "docker buildx build") || strings.Contains(s.Run, "docker build") {
			built = true
			if !strings.Contains(s.Run, `VERSION=${IMAGE_TAG}`) {
				t.Errorf("%s: the image build does not pass VERSION=${IMAGE_TAG}", w.path)
			}
		}
	}
	if !built {
		t.Errorf("%s: the build job builds no image", w.path)
	}
	if normalizeExpr(build.If) != "needs.prepare.outputs.build == 'true'" {
		t.Errorf("%s: build if: %q, want needs.prepare.outputs.build == 'true' (a rollback skips the build)", w.path, build.If)
	}

	// Each environment deploys the prepared tag.
	for env, j := range deployCallers(t, all) {
		if got := normalizeExpr(j.With["image_tag"]); got != "${{ needs.prepare.outputs.image_tag }}" {
			t.Errorf("%s: job %s (%s) passes image_tag %q", w.path, j.id, env, got)
		}
		if got := normalizeExpr(j.With["image_digest"]); got != "${{ needs.build.outputs.digest }}" {
			t.Errorf("%s: job %s (%s) passes image_digest %q, want the digest of the one build", w.path, j.id, env, got)
		}
	}

	// And the task definition gets <registry>/<repository>:<that tag>.
	dw, dj := deployJob(t, all)
	renders := dj.stepsUsing("aws-actions/amazon-ecs-render-task-definition")
	if len(renders) == 0 {
		t.Fatalf("%s: no amazon-ecs-render-task-definition step", dw.path)
	}
	for _, r := range renders {
		image := normalizeExpr(r.With["image"])
		if want := "${{ steps.ecr.outputs.registry }}/${{ env.ECR_REPOSITORY }}:${{ inputs.image_tag }}"; image != want {
			t.Errorf("%s: step %q renders image %q, want %q", dw.path, r.label(), image, want)
		}
	}
	if got := normalizeExpr(dj.Env["IMAGE_TAG"]); got != "${{ inputs.image_tag }}" {
		t.Errorf("%s: IMAGE_TAG = %q, want ${{ inputs.image_tag }}", dw.path, got)
	}
	var pushed bool
	for _, s := range dj.Steps {
		if strings.Contains(s.Run, "skopeo copy") {
			pushed = true
			if !strings.Contains(s.Run, `"docker://${REGISTRY}/${ECR_REPOSITORY}:${IMAGE_TAG}"`) || !strings.Contains(s.Run, "--preserve-digests") {
				t.Errorf("%s: the push must go to ${REGISTRY}/${ECR_REPOSITORY}:${IMAGE_TAG} with --preserve-digests", dw.path)
			}
		}
	}
	if !pushed {
		t.Errorf("%s: no step pushes the image", dw.path)
	}
}

// resolve substitutes ${{ env.X }} with the job's env and ${{ inputs.environment }} with the
// environment; anything else left over is an error.
func resolve(t *testing.T, where, value string, env map[string]string, environment string) string {
	t.Helper()
	value = normalizeExpr(value)
	for range 5 {
		value = exprRE.ReplaceAllStringFunc(value, func(m string) string {
			inner := exprRE.FindStringSubmatch(m)[1]
			if name, ok := strings.CutPrefix(inner, "env."); ok {
				if v, ok := env[name]; ok {
					return normalizeExpr(v)
				}
			}
			return m
		})
	}
	value = strings.ReplaceAll(value, "${{ inputs.environment }}", environment)
	if strings.Contains(value, "${{") {
		t.Fatalf("%s: %q depends on more than the environment name", where, value)
	}
	return value
}

func TestDeployNamesMatchTerraform(t *testing.T) {
	all := loadWorkflows(t)
	w, j := deployJob(t, all)

	renders := j.stepsUsing("aws-actions/amazon-ecs-render-task-definition")
	deploys := j.stepsUsing("aws-actions/amazon-ecs-deploy-task-definition")
	if len(renders) != 2 || len(deploys) != 2 {
		t.Fatalf("%s: want a render and a deploy step for the API and for the worker, found %d and %d", w.path, len(renders), len(deploys))
	}
	// Pair each deploy step with the render step whose output it registers, and each render step
	// with the describe-task-definition step that wrote its input.
	type rollout struct{ describe, render, deploy *step }
	byService := map[string]rollout{}
	for _, deploy := range deploys {
		var r rollout
		r.deploy = deploy
		for _, render := range renders {
			if render.ID != "" && normalizeExpr(deploy.With["task-definition"]) == "${{ steps."+render.ID+".outputs.task-definition }}" {
				r.render = render
			}
		}
		if r.render == nil {
			t.Fatalf("%s: deploy step %q registers %q, not a rendered task definition", w.path, deploy.label(), deploy.With["task-definition"])
		}
		file := strings.ReplaceAll(normalizeExpr(r.render.With["task-definition"]), "${{ runner.temp }}", "${RUNNER_TEMP}")
		for _, s := range j.Steps {
			if strings.Contains(s.Run, "aws ecs describe-task-definition") && file != "" && strings.Contains(s.Run, `>"`+file+`"`) {
				r.describe = s
			}
		}
		if r.describe == nil {
			t.Fatalf("%s: render step %q reads %q, which no describe-task-definition step writes", w.path, r.render.label(), file)
		}
		if !strings.Contains(r.describe.Run, "--query taskDefinition") {
			t.Errorf("%s: step %q must describe the live family with --query taskDefinition", w.path, r.describe.label())
		}
		if deploy.With["wait-for-service-stability"] != "true" {
			t.Errorf("%s: step %q: wait-for-service-stability = %q, want true", w.path, deploy.label(), deploy.With["wait-for-service-stability"])
		}
		byService[normalizeExpr(deploy.With["service"])] = r
	}
	api, ok := byService["${{ env.ECS_SERVICE }}"]
	if !ok {
		t.Fatalf("%s: no deploy step updates ${{ env.ECS_SERVICE }}", w.path)
	}
	worker, ok := byService["${{ env.WORKER_SERVICE }}"]
	if !ok {
		t.Fatalf("%s: no deploy step updates ${{ env.WORKER_SERVICE }}", w.path)
	}
	render, deploy := api.render, api.deploy
	if !strings.Contains(api.describe.Run, `--task-definition "$TASK_DEFINITION_FAMILY"`) {
		t.Errorf("%s: the API's describe-task-definition must read --task-definition \"$TASK_DEFINITION_FAMILY\"", w.path)
	}
	if !strings.Contains(worker.describe.Run, `--task-definition "$WORKER_TASK_DEFINITION_FAMILY"`) {
		t.Errorf("%s: the worker's describe-task-definition must read --task-definition \"$WORKER_TASK_DEFINITION_FAMILY\"", w.path)
	}

	// The image push and the rollback check address the same repository.
	var pushStep *step
	for _, s := range j.Steps {
		if strings.Contains(s.Run, "aws ecr describe-images") {
			pushStep = s
		}
	}
	if pushStep == nil || !strings.Contains(pushStep.Run, `--repository-name "$ECR_REPOSITORY"`) {
		t.Errorf("%s: the image step must look up tags with aws ecr describe-images --repository-name \"$ECR_REPOSITORY\"", w.path)
	}

	// The check after the deployment looks at the same service.
	var verify *step
	for _, s := range j.Steps {
		if strings.Contains(s.Run, "aws ecs describe-services") {
			verify = s
		}
	}
	if verify == nil || !strings.Contains(verify.Run, `--cluster "$ECS_CLUSTER" --services "$ECS_SERVICE"`) {
		t.Errorf("%s: a step must check the service after the deployment (aws ecs describe-services --cluster \"$ECS_CLUSTER\" --services \"$ECS_SERVICE\")", w.path)
	}

	for _, ws := range terraformWorkspaces(t) {
		t.Run(ws, func(t *testing.T) {
			tf := terraformNames(t, ws)
			where := fmt.Sprintf("%s (%s)", w.path, ws)
			env := func(name string) string { return resolve(t, where+" env "+name, j.Env[name], j.Env, ws) }
			checks := []struct{ what, workflow, terraform string }{
				{"ECR repository (env ECR_REPOSITORY)", env("ECR_REPOSITORY"), tf.ECRRepository},
				{"ECS cluster (env ECS_CLUSTER)", env("ECS_CLUSTER"), tf.ECSCluster},
				{"ECS service (env ECS_SERVICE)", env("ECS_SERVICE"), tf.ECSService},
				{"task definition family (env TASK_DEFINITION_FAMILY)", env("TASK_DEFINITION_FAMILY"), tf.TaskDefinitionFamily},
				{"container (env CONTAINER_NAME)", env("CONTAINER_NAME"), tf.Container},
				{"container (render container-name)", resolve(t, where, render.With["container-name"], j.Env, ws), tf.Container},
				{"cluster (deploy cluster)", resolve(t, where, deploy.With["cluster"], j.Env, ws), tf.ECSCluster},
				{"service (deploy service)", resolve(t, where, deploy.With["service"], j.Env, ws), tf.ECSService},
				{"worker service (env WORKER_SERVICE)", env("WORKER_SERVICE"), tf.WorkerService},
				{"worker task definition family (env WORKER_TASK_DEFINITION_FAMILY)", env("WORKER_TASK_DEFINITION_FAMILY"), tf.WorkerTaskDefinitionFamily},
				{"worker cluster (deploy cluster)", resolve(t, where, worker.deploy.With["cluster"], j.Env, ws), tf.WorkerCluster},
				{"worker container (render container-name)", resolve(t, where, worker.render.With["container-name"], j.Env, ws), tf.Container},
				{"repository (render image)", strings.TrimSuffix(strings.TrimPrefix(resolve(t, where,
					strings.ReplaceAll(strings.ReplaceAll(normalizeExpr(render.With["image"]), "${{ steps.ecr.outputs.registry }}", "REGISTRY"),
						"${{ inputs.image_tag }}", "TAG"), j.Env, ws), "REGISTRY/"), ":TAG"), tf.ECRRepository},
			}
			for _, c := range checks {
				if c.workflow != c.terraform {
					t.Errorf("%s: %s is %q in the workflow, %q in Terraform", where, c.what, c.workflow, c.terraform)
				}
			}
		})
	}
}

// The image is built for the CPU architecture of the task definition.
func TestImagePlatformMatchesTaskDefinition(t *testing.T) {
	all := loadWorkflows(t)
	w := all["deploy.yml"]
	platforms := map[string]string{"X86_64": "linux/amd64", "ARM64": "linux/arm64"}
	for _, ws := range terraformWorkspaces(t) {
		arch := terraformNames(t, ws).CPUArchitecture
		want, ok := platforms[arch]
		if !ok {
			t.Fatalf("Terraform (%s): unknown cpu_architecture %q", ws, arch)
		}
		var found bool
		for _, s := range w.Jobs["build"].Steps {
			if strings.Contains(s.Run, "docker buildx build") {
				found = true
				if !strings.Contains(s.Run, "--platform "+want) {
					t.Errorf("%s: the image is not built with --platform %s (cpu_architecture %s in %s)", w.path, want, arch, ws)
				}
			}
		}
		if !found {
			t.Fatalf("%s: no docker buildx build in the build job", w.path)
		}
	}
}

func TestMakeTargetsExist(t *testing.T) {
	targets := makefileTargets(t)
	called := map[string]bool{}
	for _, w := range loadWorkflows(t) {
		for _, j := range w.sortedJobs() {
			for _, s := range j.Steps {
				names, problems := makeCalls(s.Run)
				for _, p := range problems {
					t.Errorf("%s: job %s, step %q: %s", w.path, j.id, s.label(), p)
				}
				for _, name := range names {
					called[name] = true
					if !targets[name] {
						t.Errorf("%s: job %s, step %q: make %s, but the Makefile has no target %q", w.path, j.id, s.label(), name, name)
					}
				}
			}
		}
	}
	// CI runs what the README tells a contributor to run.
	for _, name := range []string{"test", "lint"} {
		if !called[name] {
			t.Errorf("no workflow runs make %s", name)
		}
	}
}

func TestMakeCallsParser(t *testing.T) {
	got, problems := makeCalls("set -e\nFOO=1 make test lint V=1\nif true; then make tools; fi\necho make nothing # make comment\nmake -j2 \\\n  build")
	if want := []string{"test", "lint", "tools", "build"}; !slices.Equal(got, want) || len(problems) != 0 {
		t.Errorf("makeCalls = %v %v, want %v", got, problems, want)
	}
	if _, problems := makeCalls("make -C sub test"); len(problems) == 0 {
		t.Error("make -C must be reported")
	}
}

// Every action is pinned to a full commit SHA, with the version it stands for in a trailing
// comment (`uses: owner/repo@<40 hex> # v1.2.3`), which Dependabot keeps current together with
// the SHA. A tag can be moved to other code; a SHA cannot, and these jobs can mint AWS credentials.
func TestActionsPinned(t *testing.T) {
	usesRE := regexp.MustCompile(`^\s*(?:-\s+)?uses:\s*(\S+)\s*(?:#\s*(\S+))?\s*$`)
	seen := map[string]bool{}
	for name, w := range loadWorkflows(t) {
		data, err := os.ReadFile(filepath.Join(repoRoot(t), w.path))
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for i, line := range strings.Split(string(data), "\n") {
			m := usesRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			count++
			uses, comment := m[1], m[2]
			where := fmt.Sprintf("%s:%d", w.path, i+1)
			if strings.HasPrefix(uses, "./") {
				if _, err := os.Stat(filepath.Join(repoRoot(t), uses)); err != nil {
					t.Errorf("%s: local action %s: %v", where, uses, err)
				}
				continue
			}
			if strings.HasPrefix(uses, "docker://") {
				if !strings.Contains(uses, "@sha256:") {
					t.Errorf("%s: %s is not pinned to a digest", where, uses)
				}
				continue
			}
			action, ref, ok := strings.Cut(uses, "@")
			parts := strings.Split(action, "/")
			repo := strings.Join(parts[:min(2, len(parts))], "/")
			seen[repo] = true
			if !ok || !shaRE.MatchString(ref) {
				t.Errorf("%s: %s is not pinned to a full commit SHA", where, uses)
				continue
			}
			v := versionRE.FindStringSubmatch(comment)
			if len(v) < 4 || v[2] == "" || v[3] == "" {
				t.Errorf("%s: %s needs the version it pins as a comment (# vX.Y.Z), found %q", where, uses, comment)
				continue
			}
			major, _ := strconv.Atoi(v[1])
			minor, _ := strconv.Atoi(v[2])
			patch, _ := strconv.Atoi(v[3])
			if want, ok := requiredMajors[repo]; ok && major != want {
				t.Errorf("%s: %s is %s, want major v%d", where, action, comment, want)
			}
			if minimum, ok := minimumVersions[repo]; ok && versionLess([3]int{major, minor, patch}, minimum) {
				t.Errorf("%s: %s is %s, want at least v%d.%d.%d", where, action, comment, minimum[0], minimum[1], minimum[2])
			}
		}
		// The raw scan must see every step the YAML parser sees.
		parsed := 0
		for _, j := range w.Jobs {
			if j.Uses != "" {
				parsed++
			}
			for _, st := range j.Steps {
				if st.Uses != "" {
					parsed++
				}
			}
		}
		if count != parsed {
			t.Errorf("%s: %d uses: lines read, %d in the parsed workflow (one uses: per line, comment after it)", name, count, parsed)
		}
	}
	for repo := range requiredMajors {
		if !seen[repo] {
			t.Errorf("no workflow uses %s", repo)
		}
	}
}

func versionLess(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// Secrets go to action inputs (or to `secrets:` of reusable workflows) only: never into a shell
// script, where an echo, a trace or an error message could print them.
func TestSecretsNeverEchoed(t *testing.T) {
	secretRE := regexp.MustCompile(`secrets\.[A-Za-z_][A-Za-z0-9_]*`)
	// Tests of presence are fine: they evaluate to true or false.
	presenceRE := regexp.MustCompile(`^\$\{\{\s*secrets\.[A-Za-z_][A-Za-z0-9_]*\s*!=\s*''\s*\}\}$`)
	tracingRE := regexp.MustCompile(`\bset\s+-[a-z]*x|\bset\s+-o\s+xtrace|\bbash\s+-[a-z]*x`)
	// Inputs that may receive a secret.
	secretInputs := map[string][]string{
		"aws-actions/configure-aws-credentials": {"aws-access-key-id", "aws-secret-access-key", "allowed-account-ids"},
	}
	for _, w := range loadWorkflows(t) {
		checkEnv := func(where string, env map[string]string) {
			for name, value := range env {
				if secretRE.MatchString(value) && !presenceRE.MatchString(strings.TrimSpace(value)) {
					t.Errorf("%s: env %s gets a secret; pass secrets to action inputs only", where, name)
				}
			}
		}
		checkEnv(w.path, w.Env)
		for _, j := range w.sortedJobs() {
			checkEnv(w.path+": job "+j.id, j.Env)
			for name, value := range j.With {
				if secretRE.MatchString(value) {
					t.Errorf("%s: job %s passes a secret as the input %s; use secrets:", w.path, j.id, name)
				}
			}
			for _, s := range j.Steps {
				where := fmt.Sprintf("%s: job %s, step %q", w.path, j.id, s.label())
				checkEnv(where, s.Env)
				if secretRE.MatchString(s.Run) {
					t.Errorf("%s: the script reads a secret", where)
				}
				if tracingRE.MatchString(s.Run) || tracingRE.MatchString(s.Shell) {
					t.Errorf("%s: shell tracing (set -x) prints every expanded command", where)
				}
				action, _, _ := strings.Cut(s.Uses, "@")
				for input, value := range s.With {
					if secretRE.MatchString(value) && !slices.Contains(secretInputs[action], input) {
						t.Errorf("%s: input %s gets a secret", where, input)
					}
				}
			}
		}
		if secretRE.MatchString(w.Name) {
			t.Errorf("%s: the workflow name reads a secret", w.path)
		}
	}
	// Debug logging of the runner prints the environment of every step.
	for _, w := range loadWorkflows(t) {
		data, err := os.ReadFile(filepath.Join(repoRoot(t), w.path))
		if err != nil {
			t.Fatal(err)
		}
		for _, debug := range []string{"ACTIONS_STEP_DEBUG", "ACTIONS_RUNNER_DEBUG"} {
			if strings.Contains(string(data), debug) {
				t.Errorf("%s sets %s", w.path, debug)
			}
		}
	}
}

func TestCI(t *testing.T) {
	all := loadWorkflows(t)
	w := all["ci.yml"]
	events := w.events(t)
	for _, event := range []string{"pull_request", "push"} {
		n, ok := events[event]
		if !ok {
			t.Errorf("%s: no %s trigger", w.path, event)
			continue
		}
		if len(keys(n)) > 0 {
			t.Errorf("%s: %s has filters %v; CI runs on every branch and change", w.path, event, keys(n))
		}
	}
	group, cancel := concurrency(&w.Concurrency)
	if !strings.Contains(group, "github.ref") || cancel == "false" {
		t.Errorf("%s: concurrency group %q cancel-in-progress %q: superseded runs of the same ref must be cancelled", w.path, group, cancel)
	}

	var goFromMod, postgres, dockerBuild, toolsCache bool
	for _, j := range w.sortedJobs() {
		for _, s := range j.stepsUsing("actions/setup-go") {
			if s.With["go-version-file"] == "go.mod" && s.With["go-version"] == "" {
				goFromMod = true
			} else {
				t.Errorf("%s: job %s: setup-go must read the version from go.mod", w.path, j.id)
			}
		}
		for _, s := range j.stepsUsing("actions/cache") {
			if strings.Contains(s.With["path"], "TOOLS_DIR") && strings.Contains(s.With["key"], "hashFiles('Makefile')") {
				toolsCache = true
			}
		}
		for _, s := range j.Steps {
			if strings.Contains(s.Run, "apt-get install") && strings.Contains(s.Run, "postgresql") {
				postgres = true
			}
			if regexp.MustCompile(`docker (buildx )?build`).MatchString(s.Run) && !strings.Contains(s.Run, "--push") {
				dockerBuild = true
			}
		}
	}
	for what, ok := range map[string]bool{
		"setup-go with go-version-file: go.mod":      goFromMod,
		"PostgreSQL installed from apt when missing": postgres,
		"docker build of the image (no push)":        dockerBuild,
		"cache of TOOLS_DIR keyed on the Makefile":   toolsCache,
	} {
		if !ok {
			t.Errorf("%s: missing %s", w.path, what)
		}
	}
}

func TestTerraformWorkflow(t *testing.T) {
	all := loadWorkflows(t)
	w := all["terraform.yml"]
	events := w.events(t)
	workspaces := terraformWorkspaces(t)

	pr, ok := events["pull_request"]
	if !ok || !slices.Contains(stringList(mapping(pr, "paths")), "terraform/**") {
		t.Errorf("%s: want a pull_request trigger on paths terraform/**", w.path)
	}
	// Pushes apply through deploy.yml, each environment's apply first in its deployment
	// (TestDeployOrder); here only by hand.
	if _, ok := events["push"]; ok {
		t.Errorf("%s: no push trigger: deploy.yml applies each workspace in order with its deployment", w.path)
	}

	// Plans of pull requests: one per workspace.
	plan := w.Jobs["plan"]
	if plan == nil || !plan.callsWorkflow("terraform-workspace.yml") {
		t.Fatalf("%s: want a plan job calling terraform-workspace.yml", w.path)
	}
	matrix := stringList(mapping(&plan.Strategy.Matrix, "workspace"))
	sort.Strings(matrix)
	if !slices.Equal(matrix, workspaces) {
		t.Errorf("%s: plan matrix %v, Terraform workspaces %v", w.path, matrix, workspaces)
	}
	if plan.With["apply"] != "false" {
		t.Errorf("%s: the pull request plans must not apply", w.path)
	}

	// Applies: by hand only, of the one workspace the dispatch names, never two at once for a
	// workspace.
	var applies []*job
	for _, j := range w.sortedJobs() {
		if j.With["apply"] == "true" {
			applies = append(applies, j)
		}
	}
	if len(applies) != 1 {
		t.Fatalf("%s: %d apply jobs, want one for the dispatched workspace", w.path, len(applies))
	}
	dispatch := applies[0]
	if got := strings.Join(strings.Fields(dispatch.If), " "); got != "github.event_name == 'workflow_dispatch'" {
		t.Errorf("%s: job %s: if %q, want only on workflow_dispatch", w.path, dispatch.id, got)
	}
	if ws := normalizeExpr(dispatch.With["workspace"]); ws != "${{ inputs.workspace }}" {
		t.Errorf("%s: job %s applies workspace %q, want the dispatch's ${{ inputs.workspace }}", w.path, dispatch.id, ws)
	}
	if group, cancel := concurrency(&dispatch.Concurrency); normalizeExpr(group) != "terraform-${{ inputs.workspace }}" || cancel != "false" {
		t.Errorf("%s: job %s: concurrency %q cancel-in-progress %s, want terraform-${{ inputs.workspace }} and false", w.path, dispatch.id, group, cancel)
	}
	input := mapping(mapping(mapping(events["workflow_dispatch"], "inputs"), "workspace"), "options")
	options := stringList(input)
	sort.Strings(options)
	if !slices.Equal(options, workspaces) {
		t.Errorf("%s: the dispatch offers workspaces %v, Terraform has %v", w.path, options, workspaces)
	}

	tw := all["terraform-workspace.yml"]
	if tw == nil {
		t.Fatal(".github/workflows/terraform-workspace.yml is missing")
	}
	// The plan and the apply are the shared scripts (TestSavedPlanIsTheApprovedOne,
	// TestTerraformPlanAndApplyScripts).
	if j := tw.Jobs["plan"]; j == nil || stepIndex(j, runs(".github/scripts/terraform-plan.sh")) < 0 {
		t.Errorf("%s: the plan job must run .github/scripts/terraform-plan.sh", tw.path)
	}
	if j := tw.Jobs["plan"]; j == nil || len(j.stepsUsing("actions/upload-artifact")) != 1 {
		t.Errorf("%s: the plan job must upload the saved plan", tw.path)
	}
	apply := tw.Jobs["apply"]
	if apply == nil || normalizeExpr(apply.environmentName()) != "${{ inputs.workspace }}" {
		t.Errorf("%s: the apply job must run in the GitHub environment ${{ inputs.workspace }}", tw.path)
	}
	// Pull-request plans (apply: false) run in no environment; master plans in the workspace's.
	if j := tw.Jobs["plan"]; j == nil || normalizeExpr(j.environmentName()) != "${{ inputs.apply && inputs.workspace || '' }}" {
		t.Errorf("%s: the plan job must run in the workspace's environment for applies and in none for pull requests", tw.path)
	}
}

// CI and the Terraform workflow run the same Terraform, new enough for the configuration.
func TestTerraformVersion(t *testing.T) {
	all := loadWorkflows(t)
	minimum := terraformRequiredVersion(t)
	var versions []string
	for _, name := range []string{"ci.yml", "terraform-workspace.yml", deployEnvironmentFile} {
		w := all[name]
		if w == nil {
			t.Fatalf(".github/workflows/%s is missing", name)
		}
		v := w.Env["TERRAFORM_VERSION"]
		if v == "" {
			t.Fatalf("%s: no TERRAFORM_VERSION", w.path)
		}
		versions = append(versions, v)
		for _, j := range w.sortedJobs() {
			for _, s := range j.stepsUsing("hashicorp/setup-terraform") {
				if normalizeExpr(s.With["terraform_version"]) != "${{ env.TERRAFORM_VERSION }}" {
					t.Errorf("%s: job %s: setup-terraform must install ${{ env.TERRAFORM_VERSION }}", w.path, j.id)
				}
				if s.With["terraform_wrapper"] != "false" {
					t.Errorf("%s: job %s: setup-terraform's wrapper changes outputs and exit codes; set terraform_wrapper: false", w.path, j.id)
				}
			}
		}
	}
	if versions[0] != versions[1] || versions[0] != versions[2] {
		t.Errorf("TERRAFORM_VERSION differs: %v", versions)
	}
	if compareVersions(versions[0], minimum) < 0 {
		t.Errorf("TERRAFORM_VERSION %s is older than required_version >= %s", versions[0], minimum)
	}
}

func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
