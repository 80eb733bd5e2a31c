package workflows

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Terraform never runs with access keys: in every workflow, the credentials in force when a
// Terraform script runs are the apply role or, for pull-request plans, the plan role, assumed
// through OIDC (TestAWSCredentialsOIDCOnly: no workflow has an access-key path at all).
func TestTerraformCredentialsOIDCOnly(t *testing.T) {
	roles := map[string]bool{"${{ vars.AWS_TERRAFORM_ROLE_ARN }}": true, "${{ env.ROLE_ARN }}": true}
	seen := 0
	for _, w := range loadWorkflows(t) {
		for _, j := range w.sortedJobs() {
			role := ""
			for _, s := range j.Steps {
				if name, _, _ := strings.Cut(s.Uses, "@"); name == "aws-actions/configure-aws-credentials" {
					role = normalizeExpr(s.With["role-to-assume"])
				}
				if !strings.Contains(s.Run, ".github/scripts/terraform-") && !regexp.MustCompile(`\bterraform\s+-chdir`).MatchString(s.Run) {
					continue
				}
				seen++
				if !roles[role] {
					t.Errorf("%s: job %s, step %q runs Terraform with credentials %q, want the Terraform roles through OIDC", w.path, j.id, s.label(), role)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no workflow step runs Terraform")
	}
}

// Staging and prod apply the plan their reviewers approved. In the deployment and in
// terraform.yml's applies, a plan job saves the plan (artifact, text and sha256 in the summary),
// and the apply job, in the same GitHub environment and approved after it, downloads that file
// and hands it with the plan job's sha256 to terraform-apply.sh, which refuses any other file
// and applies only a saved plan (Terraform refuses a stale one: TestTerraformPlanAndApplyScripts).
// The apply job plans nothing itself.
func TestSavedPlanIsTheApprovedOne(t *testing.T) {
	all := loadWorkflows(t)
	type pair struct {
		w           *workflow
		plan, apply *job
		environment string
	}
	dw := all[deployEnvironmentFile]
	tw := all["terraform-workspace.yml"]
	for _, p := range []pair{
		{dw, dw.Jobs["plan"], dw.Jobs["deploy"], "${{ inputs.environment }}"},
		{tw, tw.Jobs["plan"], tw.Jobs["apply"], "${{ inputs.workspace }}"},
	} {
		if p.plan == nil || p.apply == nil {
			t.Fatalf("%s: want a plan and an apply job", p.w.path)
		}
		planStep := stepIndex(p.plan, runs(".github/scripts/terraform-plan.sh"))
		if planStep < 0 || p.plan.Steps[planStep].ID != "plan" || normalizeExpr(p.plan.Outputs["sha256"]) != "${{ steps.plan.outputs.sha256 }}" {
			t.Errorf("%s: job %s must run terraform-plan.sh as step plan and output its sha256", p.w.path, p.plan.id)
			continue
		}
		uploads := p.plan.stepsUsing("actions/upload-artifact")
		downloaded := false
		for _, d := range p.apply.stepsUsing("actions/download-artifact") {
			downloaded = downloaded || len(uploads) == 1 && d.With["name"] == uploads[0].With["name"]
		}
		if len(uploads) != 1 || !downloaded || !strings.Contains(uploads[0].With["path"], ".tfplan") {
			t.Errorf("%s: the plan job must upload the saved plan and the apply job download that artifact", p.w.path)
		}
		if normalizeExpr(p.apply.environmentName()) != p.environment || !slices.Contains(stringList(&p.apply.Needs), p.plan.id) {
			t.Errorf("%s: job %s must need %s and run in the environment %s (its reviewers approve after the plan)", p.w.path, p.apply.id, p.plan.id, p.environment)
		}
		applyStep := stepIndex(p.apply, runs(".github/scripts/terraform-apply.sh"))
		if applyStep < 0 || normalizeExpr(p.apply.Steps[applyStep].Env["PLAN_SHA256"]) != "${{ needs."+p.plan.id+".outputs.sha256 }}" ||
			!strings.Contains(p.apply.Steps[applyStep].Run, `"$PLAN_SHA256"`) {
			t.Errorf("%s: job %s must apply with terraform-apply.sh and the plan job's sha256", p.w.path, p.apply.id)
		}
		for _, s := range p.apply.Steps {
			if strings.Contains(s.Run, "terraform-plan.sh") || regexp.MustCompile(`terraform\S*\s+(-chdir=\S+\s+)?plan\b|-auto-approve`).MatchString(s.Run) {
				t.Errorf("%s: job %s, step %q plans or applies unreviewed", p.w.path, p.apply.id, s.label())
			}
		}
	}

	script := readScript(t, "terraform-apply.sh")
	for _, want := range []string{
		`got="$(sha256sum "$plan" | cut -d' ' -f1)"`,
		`if [[ ! "$want" =~ ^[0-9a-f]{64}$ || "$got" != "$want" ]]; then`,
		`terraform -chdir="$config" workspace select "$workspace"`,
		`terraform -chdir="$config" apply -input=false -lock-timeout=10m "$plan"`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("terraform-apply.sh: missing %s", want)
		}
	}
	code := regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(script, "")
	if strings.Contains(code, "-auto-approve") || regexp.MustCompile(`\bplan\s+-`).MatchString(code) || strings.Contains(code, "-or-create") {
		t.Error("terraform-apply.sh must apply the saved plan only, in the workspace the plan created")
	}
}

// A workspace that does not exist yet is created where the role may write its state: the apply
// role's plans (deployments, dispatched applies) select it with -or-create; the read-only plan
// role of pull requests plans it against an empty state on the runner instead.
func TestWorkspacesCreatedWhereTheRoleMayWrite(t *testing.T) {
	all := loadWorkflows(t)
	_, plan := deployPlanJob(t, all)
	i := stepIndex(plan, runs(".github/scripts/terraform-plan.sh"))
	if i < 0 || plan.Steps[i].Env["CREATE_WORKSPACE"] != "true" {
		t.Errorf("%s: the deployment's plan (apply role) must create a missing workspace", deployEnvironmentFile)
	}
	tw := all["terraform-workspace.yml"]
	j := stepIndex(tw.Jobs["plan"], runs(".github/scripts/terraform-plan.sh"))
	if j < 0 || normalizeExpr(tw.Jobs["plan"].Steps[j].Env["CREATE_WORKSPACE"]) != "${{ inputs.apply }}" {
		t.Errorf("%s: the plan creates a workspace only with the apply role (CREATE_WORKSPACE: ${{ inputs.apply }})", tw.path)
	}
	script := readScript(t, "terraform-plan.sh")
	for _, want := range []string{
		`if [[ "${CREATE_WORKSPACE:-false}" == true ]]; then
  tf workspace select -or-create=true "$workspace"`,
		`backend "local"`,
		`-out="$plan"`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("terraform-plan.sh: missing %s", want)
		}
	}
}

// A rollback applies the Terraform of the commit it rolls back to: prepare makes the rollback's
// tag the commit, every environment gets it, and both jobs of the deployment check that commit
// out for Terraform (the scripts stay the workflow's own).
func TestRollbackAppliesTheTerraformOfItsCommit(t *testing.T) {
	all := loadWorkflows(t)
	for env, j := range deployCallers(t, all) {
		if got := normalizeExpr(j.With["commit"]); got != "${{ needs.prepare.outputs.commit }}" {
			t.Errorf("deploy.yml: job %s (%s) passes commit %q", j.id, env, got)
		}
	}
	w := all[deployEnvironmentFile]
	for _, j := range w.sortedJobs() {
		var target bool
		for _, s := range j.stepsUsing("actions/checkout") {
			if normalizeExpr(s.With["ref"]) == "${{ inputs.commit }}" && s.With["path"] == "target" {
				target = true
			}
		}
		if !target {
			t.Errorf("%s: job %s must check out ${{ inputs.commit }} into target/", w.path, j.id)
		}
		for _, s := range j.Steps {
			if strings.Contains(s.Run, ".github/scripts/terraform-") && !strings.Contains(s.Run, `"${GITHUB_WORKSPACE}/target/terraform"`) {
				t.Errorf("%s: job %s, step %q runs Terraform on another tree than the commit's", w.path, j.id, s.label())
			}
		}
	}
}

func readScript(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), ".github", "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Pull requests plan with the read-only plan role and never get the apply role: the plan job
// picks AWS_TERRAFORM_PLAN_ROLE_ARN whenever apply is false, and only the apply job (always in
// the workspace's environment) and applying plans use AWS_TERRAFORM_ROLE_ARN.
func TestTerraformPullRequestsUsePlanRole(t *testing.T) {
	all := loadWorkflows(t)
	tw := all["terraform-workspace.yml"]
	plan := tw.Jobs["plan"]
	if plan == nil {
		t.Fatalf("%s: no plan job", tw.path)
	}
	want := "${{ inputs.apply && vars.AWS_TERRAFORM_ROLE_ARN || !inputs.apply && vars.AWS_TERRAFORM_PLAN_ROLE_ARN || '' }}"
	if got := normalizeExpr(plan.Env["ROLE_ARN"]); got != want {
		t.Errorf("%s: plan job ROLE_ARN = %q, want %q", tw.path, got, want)
	}
	steps := plan.stepsUsing("aws-actions/configure-aws-credentials")
	if len(steps) != 1 || normalizeExpr(steps[0].With["role-to-assume"]) != "${{ env.ROLE_ARN }}" {
		t.Errorf("%s: the plan job must assume exactly ROLE_ARN", tw.path)
	}
	apply := tw.Jobs["apply"]
	if apply == nil || !strings.Contains(apply.If, "inputs.apply") {
		t.Fatalf("%s: the apply job must only run with apply: true", tw.path)
	}
	for _, s := range apply.stepsUsing("aws-actions/configure-aws-credentials") {
		if normalizeExpr(s.With["role-to-assume"]) != "${{ vars.AWS_TERRAFORM_ROLE_ARN }}" {
			t.Errorf("%s: the apply job must assume AWS_TERRAFORM_ROLE_ARN", tw.path)
		}
	}

	// The caller: pull requests plan with apply: false (TestTerraformWorkflow: only a dispatch
	// applies).
	w := all["terraform.yml"]
	if p := w.Jobs["plan"]; p == nil || p.With["apply"] != "false" || !strings.Contains(p.If, "pull_request") {
		t.Errorf("%s: the pull-request job must call terraform-workspace.yml with apply: false", w.path)
	}
}

// Dependabot keeps the action pins, both Go modules, the Terraform providers and the base images
// current.
func TestDependabotCoversEveryEcosystem(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".github", "dependabot.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version int `yaml:"version"`
		Updates []struct {
			Ecosystem   string   `yaml:"package-ecosystem"`
			Directory   string   `yaml:"directory"`
			Directories []string `yaml:"directories"`
		} `yaml:"updates"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Version != 2 {
		t.Errorf("dependabot.yml: version %d, want 2", cfg.Version)
	}
	got := map[string]bool{}
	for _, u := range cfg.Updates {
		dirs := u.Directories
		if u.Directory != "" {
			dirs = append(dirs, u.Directory)
		}
		for _, d := range dirs {
			got[u.Ecosystem+" "+d] = true
		}
	}
	for _, want := range []string{
		"github-actions /", "gomod /", "gomod /checks", "terraform /terraform", "terraform /terraform/bootstrap", "docker /",
	} {
		if !got[want] {
			t.Errorf("dependabot.yml: no update for %s", want)
		}
	}
}

// Every TF_VAR_<name> a workflow sets names a variable of the root module: Terraform ignores
// the others silently.
func TestTFVarsNameRootVariables(t *testing.T) {
	declared := map[string]bool{}
	for _, b := range loadTFModule(t, filepath.Join(repoRoot(t), "terraform")).blocks("variable") {
		declared[b.Labels[0]] = true
	}
	check := func(where string, env map[string]string) {
		for name := range env {
			if v, ok := strings.CutPrefix(name, "TF_VAR_"); ok && !declared[v] {
				t.Errorf("%s: %s matches no variable of terraform/", where, name)
			}
		}
	}
	for _, w := range loadWorkflows(t) {
		check(w.path, w.Env)
		for _, j := range w.sortedJobs() {
			check(w.path+": job "+j.id, j.Env)
			for _, s := range j.Steps {
				check(w.path+": job "+j.id+", step "+s.label(), s.Env)
				for _, m := range regexp.MustCompile(`\bTF_VAR_([A-Za-z0-9_]+)=`).FindAllStringSubmatch(s.Run, -1) {
					if !declared[m[1]] {
						t.Errorf("%s: job %s, step %q sets TF_VAR_%s, which matches no variable of terraform/", w.path, j.id, s.label(), m[1])
					}
				}
			}
		}
	}
}
