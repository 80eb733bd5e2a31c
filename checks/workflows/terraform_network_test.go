package workflows

import (
	"math/big"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// Nothing in AWS scrapes the tasks' metrics port (the tasks publish their metrics on their log
// output), so no ingress rule of any workspace admits it: a rule whose ports cover it must have
// a for_each or count that is empty in every workspace.
func TestMetricsPortClosedInEveryWorkspace(t *testing.T) {
	for _, ws := range terraformWorkspaces(t) {
		root := tfRoot(t, ws)
		stack := root.children["stack"]
		if stack == nil {
			t.Fatal("terraform/: no module call named stack")
		}
		port, ok := knownInt(stack.locals["metrics_port"])
		if !ok {
			t.Fatal("terraform/stack: local.metrics_port is not a known number")
		}
		rules := root.resources("aws_vpc_security_group_ingress_rule")
		if len(rules) == 0 {
			t.Fatalf("workspace %s: no ingress rules found", ws)
		}
		for _, r := range rules {
			n, known := instances(r)
			if known && n == 0 {
				continue // no rule in this workspace (a service without a load balancer)
			}
			attrs := r.block.Body.Attributes
			covers := false
			if p := attrs["ip_protocol"]; p != nil {
				if v := r.instance.eval(p.Expr, r.address()+".ip_protocol"); v.IsKnown() && !v.IsNull() && v.Type() == cty.String && v.AsString() == "-1" {
					covers = true
				}
			}
			if !covers {
				from, okFrom := knownInt(r.instance.eval(attrs["from_port"].Expr, r.address()+".from_port"))
				to, okTo := knownInt(r.instance.eval(attrs["to_port"].Expr, r.address()+".to_port"))
				if !okFrom || !okTo {
					t.Errorf("workspace %s: %s: ports are not known numbers", ws, r.address())
					continue
				}
				covers = from <= port && port <= to
			}
			if !covers {
				continue
			}
			if !known || n > 0 {
				t.Errorf("workspace %s: %s admits the metrics port %d (instances: %d, known: %t)", ws, r.address(), port, n, known)
			}
		}
	}
}

// instances is the number of instances of a resource block: its for_each or count, or 1.
func instances(b tfBlock) (n int, known bool) {
	if fe := b.block.Body.Attributes["for_each"]; fe != nil {
		v := b.instance.eval(fe.Expr, b.address()+".for_each")
		if !v.IsWhollyKnown() || v.IsNull() {
			return 0, false
		}
		return v.LengthInt(), true
	}
	if c := b.block.Body.Attributes["count"]; c != nil {
		return knownInt(b.instance.eval(c.Expr, b.address()+".count"))
	}
	return 1, true
}

func knownInt(v cty.Value) (int, bool) {
	if !v.IsKnown() || v.IsNull() || v.Type() != cty.Number {
		return 0, false
	}
	i, acc := v.AsBigFloat().Int64()
	if acc != big.Exact {
		return 0, false
	}
	return int(i), true
}
