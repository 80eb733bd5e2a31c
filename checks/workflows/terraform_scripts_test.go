package workflows

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tfScripts runs .github/scripts/terraform-plan.sh and terraform-apply.sh with a real Terraform
// on a configuration of Terraform's own terraform_data resources and a local backend that
// stands in for the S3 state bucket.
type tfScripts struct {
	t         *testing.T
	terraform string
	dir       string // holds config/, state/, backend.hcl, vars.tfvars
}

func newTFScripts(t *testing.T) *tfScripts {
	t.Helper()
	bin := os.Getenv("TERRAFORM")
	if bin == "" {
		bin = "terraform"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("the workflows' Terraform scripts need terraform (1.11 or later; set TERRAFORM or put it on PATH): %v", err)
	}
	s := &tfScripts{t: t, terraform: path, dir: t.TempDir()}
	s.write("config/main.tf", `terraform {
  backend "local" {}
}

variable "size" {
  type    = string
  default = "small"
}

resource "terraform_data" "stack" {
  input = "${terraform.workspace}-${var.size}"
}
`)
	s.write("config/.terraform.lock.hcl", "")
	s.write("backend.hcl", "path = \""+s.path("state/default.tfstate")+"\"\nworkspace_dir = \""+s.path("state/workspaces")+"\"\n")
	s.write("vars.tfvars", "")
	if err := os.MkdirAll(s.path("state"), 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *tfScripts) path(rel string) string { return filepath.Join(s.dir, rel) }

func (s *tfScripts) write(rel, content string) {
	s.t.Helper()
	if err := os.MkdirAll(filepath.Dir(s.path(rel)), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(s.path(rel), []byte(content), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// run runs a script and returns its output and its GITHUB_OUTPUT lines.
func (s *tfScripts) run(env []string, script string, args ...string) (out string, outputs map[string]string, err error) {
	s.t.Helper()
	outputFile := filepath.Join(s.t.TempDir(), "github_output")
	cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot(s.t), ".github", "scripts", script)}, args...)...)
	cmd.Env = append(os.Environ(),
		"PATH="+filepath.Dir(s.terraform)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1",
		"TF_DATA_DIR="+s.path("data"),
		"BACKEND_CONFIG_FILE="+s.path("backend.hcl"), "VAR_FILE="+s.path("vars.tfvars"),
		"GITHUB_OUTPUT="+outputFile)
	cmd.Env = append(cmd.Env, env...)
	b, err := cmd.CombinedOutput()
	outputs = map[string]string{}
	if f, ferr := os.Open(outputFile); ferr == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				outputs[k] = v
			}
		}
	}
	return string(b), outputs, err
}

func (s *tfScripts) plan(createWorkspace bool, workspace, file string) map[string]string {
	s.t.Helper()
	create := "CREATE_WORKSPACE=false"
	if createWorkspace {
		create = "CREATE_WORKSPACE=true"
	}
	out, outputs, err := s.run([]string{create}, "terraform-plan.sh", s.path("config"), workspace, s.path(file))
	if err != nil {
		s.t.Fatalf("terraform-plan.sh %s: %v\n%s", workspace, err, out)
	}
	return outputs
}

func (s *tfScripts) apply(workspace, file, sha string) (string, error) {
	s.t.Helper()
	out, _, err := s.run(nil, "terraform-apply.sh", s.path("config"), workspace, s.path(file), sha)
	return out, err
}

func (s *tfScripts) stateFiles() []string {
	s.t.Helper()
	var files []string
	err := filepath.WalkDir(s.path("state"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(p, s.path("state")+"/"))
		}
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return files
}

// The scripts the deploy and the Terraform workflow share. A pull request's plan (read-only role)
// of a workspace that does not exist yet plans its creation without writing any state; the
// apply role's plan creates the workspace (the first push to master, the first promotion); the
// apply takes exactly the approved file and Terraform refuses it once the state has moved on.
func TestTerraformPlanAndApplyScripts(t *testing.T) {
	s := newTFScripts(t)

	// A pull request before any deploy: nothing is written to the backend.
	pr := s.plan(false, "dev", "pr.tfplan")
	if pr["changes"] != "true" || pr["new_workspace"] != "true" || len(pr["sha256"]) != 64 {
		t.Fatalf("pull-request plan of a new workspace: outputs %v", pr)
	}
	if files := s.stateFiles(); len(files) != 0 {
		t.Fatalf("the read-only plan wrote state: %v", files)
	}
	if text, err := os.ReadFile(s.path("pr.tfplan.txt")); err != nil || !strings.Contains(string(text), "terraform_data.stack will be created") {
		t.Fatalf("plan text: %v\n%s", err, text)
	}
	if _, err := os.Stat(s.path("config/zz_empty_state_override.tf")); !os.IsNotExist(err) {
		t.Fatalf("the empty-state override was left in the configuration: %v", err)
	}

	// The first deploy: the apply role's plan creates the workspace, the approved file applies.
	first := s.plan(true, "dev", "first.tfplan")
	if first["changes"] != "true" || first["new_workspace"] != "false" {
		t.Fatalf("deploy plan: outputs %v", first)
	}
	if out, err := s.apply("dev", "first.tfplan", strings.Repeat("0", 64)); err == nil || !strings.Contains(out, "refusing to apply") {
		t.Fatalf("apply of a file other than the approved one: %v\n%s", err, out)
	}
	if out, err := s.apply("dev", "first.tfplan", first["sha256"]); err != nil || !strings.Contains(out, "Apply complete! Resources: 1 added") {
		t.Fatalf("apply of the approved plan: %v\n%s", err, out)
	}
	if pr2 := s.plan(false, "dev", "pr2.tfplan"); pr2["changes"] != "false" || pr2["new_workspace"] != "false" {
		t.Fatalf("pull-request plan of the existing workspace: outputs %v", pr2)
	}

	// Approved, but another apply changed the state meanwhile: refused, nothing applied.
	s.write("vars.tfvars", "size = \"large\"\n")
	approved := s.plan(true, "dev", "approved.tfplan")
	s.write("vars.tfvars", "size = \"medium\"\n")
	other := s.plan(true, "dev", "other.tfplan")
	if out, err := s.apply("dev", "other.tfplan", other["sha256"]); err != nil {
		t.Fatalf("apply of the other plan: %v\n%s", err, out)
	}
	if out, err := s.apply("dev", "approved.tfplan", approved["sha256"]); err == nil || !strings.Contains(out, "Saved plan is stale") {
		t.Fatalf("apply of a plan whose state changed since: %v, want Terraform's refusal\n%s", err, out)
	}
	state, err := os.ReadFile(s.path("state/workspaces/dev/terraform.tfstate"))
	if err != nil || !strings.Contains(string(state), `"dev-medium"`) || strings.Contains(string(state), "dev-large") {
		t.Fatalf("state after the refusal: %v\n%s", err, state)
	}
}
