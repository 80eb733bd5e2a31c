package workflows

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The account-wide GitHub OIDC provider and the CI roles exist in bootstrap only: a workspace that
// created them would collide with the next workspace of the account (EntityAlreadyExists) and
// delete them for everyone when destroyed.
func TestCIIdentitiesOnlyInBootstrap(t *testing.T) {
	for _, ws := range terraformWorkspaces(t) {
		root := tfRoot(t, ws)
		if got := root.resources("aws_iam_openid_connect_provider"); len(got) != 0 {
			t.Errorf("workspace %s creates the GitHub OIDC provider (%s); bootstrap owns it", ws, got[0].address())
		}
		for _, b := range root.resources("aws_iam_role") {
			if b.block.Labels[1] == "deploy" {
				t.Errorf("workspace %s creates a deploy role (%s); bootstrap owns it", ws, b.address())
			}
		}
	}
	boot := loadTFModule(t, filepath.Join(repoRoot(t), "terraform", "bootstrap"))
	want := map[string]bool{"aws_iam_openid_connect_provider.github": false, "aws_iam_role.plan": false, "aws_iam_role.apply": false, "aws_iam_role.deploy": false}
	for _, b := range boot.blocks("resource") {
		key := b.Labels[0] + "." + b.Labels[1]
		if _, ok := want[key]; ok {
			want[key] = true
		}
	}
	for key, found := range want {
		if !found {
			t.Errorf("terraform/bootstrap: %s is missing", key)
		}
	}
}

// Resources whose name AWS allows only once (target groups, security groups) are named by prefix
// and created before the old one is destroyed, so a replacement goes through without a clash on
// the name and without a gap.
func TestUniqueNamesByPrefixWithCreateBeforeDestroy(t *testing.T) {
	for _, typ := range []string{"aws_lb_target_group", "aws_security_group"} {
		seen := 0
		for _, b := range tfRoot(t, "prod").resources(typ) {
			seen++
			attrs := b.block.Body.Attributes
			if _, ok := attrs["name"]; ok {
				t.Errorf("%s: a fixed name; use name_prefix", b.address())
			}
			if _, ok := attrs["name_prefix"]; !ok {
				t.Errorf("%s: no name_prefix", b.address())
			}
			if !createBeforeDestroy(b.block.Body) {
				t.Errorf("%s: lifecycle { create_before_destroy = true } is missing", b.address())
			}
		}
		if seen == 0 {
			t.Errorf("no %s in the prod workspace", typ)
		}
	}
}

func createBeforeDestroy(body *hclsyntax.Body) bool {
	for _, l := range body.Blocks {
		if l.Type != "lifecycle" {
			continue
		}
		if a, ok := l.Body.Attributes["create_before_destroy"]; ok {
			if lit, ok := a.Expr.(*hclsyntax.LiteralValueExpr); ok && lit.Val.True() {
				return true
			}
		}
	}
	return false
}
