package workflows

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Terraform never runs with access keys: every configure-aws-credentials step of the Terraform
// workflows assumes a role through OIDC, and no secret reaches them.
func TestTerraformCredentialsOIDCOnly(t *testing.T) {
	all := loadWorkflows(t)
	for _, name := range []string{"terraform.yml", "terraform-workspace.yml"} {
		w := all[name]
		if w == nil {
			t.Fatalf(".github/workflows/%s is missing", name)
		}
		data, err := os.ReadFile(filepath.Join(repoRoot(t), w.path))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "secrets.") {
			t.Errorf("%s: Terraform runs use no secret (no access-key fallback)", w.path)
		}
		for _, j := range w.sortedJobs() {
			if j.Secrets.Kind != 0 {
				t.Errorf("%s: job %s passes secrets", w.path, j.id)
			}
			for _, s := range j.stepsUsing("aws-actions/configure-aws-credentials") {
				if s.With["role-to-assume"] == "" {
					t.Errorf("%s: job %s: a credentials step without role-to-assume", w.path, j.id)
				}
				for _, input := range []string{"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} {
					if s.With[input] != "" {
						t.Errorf("%s: job %s: %s is set", w.path, j.id, input)
					}
				}
			}
		}
	}
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
