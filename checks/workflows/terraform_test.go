package workflows

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// A small evaluator of the Terraform configuration under terraform/, enough to compute the names
// Terraform gives to resources for a workspace: it loads the root module and, through the module
// calls with local sources, every module instance below it (one per key of a for_each), passes
// the call arguments as input variables, and evaluates locals and resource arguments. Whatever
// only AWS or the provider would know (resource attributes, data sources, unsupported functions)
// is an unknown value; names built from the workspace, locals, variables and string templates
// come out known.

// tfModule is the parsed HCL of one module directory.
type tfModule struct {
	dir    string
	bodies []*hclsyntax.Body
}

// tfInstance is a module called with concrete input variables.
type tfInstance struct {
	address   string // "" for the root, then module.stack, module.stack.module.service, ...
	module    *tfModule
	workspace string
	vars      map[string]cty.Value
	locals    map[string]cty.Value
	problems  []string               // what could not be evaluated (as unknown values), for failure messages
	children  map[string]*tfInstance // by call name, or name["key"] for an instance of a for_each
	parent    *tfInstance
	callBlock *hclsyntax.Block // the module block of the parent that created this instance
	each      cty.Value        // each.key and each.value of a for_each instance, else cty.NilVal
}

type tfBlock struct {
	instance *tfInstance
	block    *hclsyntax.Block
}

func (b tfBlock) address() string {
	name := strings.Join(b.block.Labels, ".")
	if b.instance.address == "" {
		return name
	}
	return b.instance.address + "." + name
}

var tfModules = map[string]*tfModule{}

func loadTFModule(t *testing.T, dir string) *tfModule {
	t.Helper()
	if m := tfModules[dir]; m != nil {
		return m
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no .tf files in %s", dir)
	}
	m := &tfModule{dir: dir}
	parser := hclparse.NewParser()
	for _, path := range paths {
		f, diags := parser.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Fatalf("parsing %s: %s", path, diags.Error())
		}
		m.bodies = append(m.bodies, f.Body.(*hclsyntax.Body))
	}
	tfModules[dir] = m
	return m
}

func (m *tfModule) blocks(typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.bodies {
		for _, block := range b.Blocks {
			if block.Type == typ {
				out = append(out, block)
			}
		}
	}
	return out
}

// Functions evaluated for real; any other function called yields an unknown value.
var tfFunctions = map[string]function.Function{
	"coalesce":   stdlib.CoalesceFunc,
	"concat":     stdlib.ConcatFunc,
	"contains":   stdlib.ContainsFunc,
	"format":     stdlib.FormatFunc,
	"join":       stdlib.JoinFunc,
	"jsonencode": stdlib.JSONEncodeFunc,
	"keys":       stdlib.KeysFunc,
	"lower":      stdlib.LowerFunc,
	"merge":      stdlib.MergeFunc,
	"replace":    stdlib.ReplaceFunc,
	"substr":     stdlib.SubstrFunc,
	"toset":      toSetFunc,
	"trimprefix": stdlib.TrimPrefixFunc,
	"trimsuffix": stdlib.TrimSuffixFunc,
	"upper":      stdlib.UpperFunc,
}

// toSetFunc is Terraform's toset: a collection as a set of its elements' type.
var toSetFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true}},
	Type: func([]cty.Value) (cty.Type, error) {
		return cty.Set(cty.DynamicPseudoType), nil
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return convert.Convert(args[0], cty.Set(cty.DynamicPseudoType))
	},
})

var unknownFunction = function.New(&function.Spec{
	VarParam: &function.Parameter{
		Name:             "args",
		Type:             cty.DynamicPseudoType,
		AllowNull:        true,
		AllowUnknown:     true,
		AllowDynamicType: true,
		AllowMarked:      true,
	},
	Type: function.StaticReturnType(cty.DynamicPseudoType),
	Impl: func([]cty.Value, cty.Type) (cty.Value, error) { return cty.DynamicVal, nil },
})

func objectOf(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

// evalContext gives var, local, terraform.workspace and the given names (each of a module call,
// the iterator of a dynamic block) their values, and every other root name (resources, data,
// module outputs, path, count, ephemeral) an unknown value.
func (in *tfInstance) evalContext(expr hclsyntax.Expression, extra map[string]cty.Value) *hcl.EvalContext {
	vars := map[string]cty.Value{
		"var":       objectOf(in.vars),
		"local":     objectOf(in.locals),
		"terraform": cty.ObjectVal(map[string]cty.Value{"workspace": cty.StringVal(in.workspace)}),
	}
	for name, v := range extra {
		vars[name] = v
	}
	for _, tr := range expr.Variables() {
		if _, ok := vars[tr.RootName()]; !ok {
			vars[tr.RootName()] = cty.DynamicVal
		}
	}
	funcs := map[string]function.Function{}
	_ = hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics { // the visitor reports nothing
		if call, ok := n.(*hclsyntax.FunctionCallExpr); ok {
			if f, ok := tfFunctions[call.Name]; ok {
				funcs[call.Name] = f
			} else {
				funcs[call.Name] = unknownFunction
			}
		}
		return nil
	})
	return &hcl.EvalContext{Variables: vars, Functions: funcs}
}

// eval evaluates an expression of the instance; failures become unknown values and are noted.
func (in *tfInstance) eval(expr hclsyntax.Expression, what string) cty.Value {
	return in.evalWith(expr, what, nil)
}

func (in *tfInstance) evalWith(expr hclsyntax.Expression, what string, extra map[string]cty.Value) cty.Value {
	v, diags := expr.Value(in.evalContext(expr, extra))
	if diags.HasErrors() {
		in.problems = append(in.problems, fmt.Sprintf("%s: %s", what, diags.Error()))
		return cty.DynamicVal
	}
	return v
}

// newTFInstance evaluates the locals of a module instance and, recursively, its module calls.
func newTFInstance(t *testing.T, address, dir, workspace string, args map[string]cty.Value) *tfInstance {
	t.Helper()
	m := loadTFModule(t, dir)
	in := &tfInstance{
		address:   address,
		module:    m,
		workspace: workspace,
		vars:      map[string]cty.Value{},
		locals:    map[string]cty.Value{},
		children:  map[string]*tfInstance{},
	}

	// Input variables: the call's argument, else the default, else unknown.
	for _, block := range m.blocks("variable") {
		name := block.Labels[0]
		switch v, ok := args[name]; {
		case ok && !(v.IsKnown() && v.IsNull()):
			in.vars[name] = v
		case block.Body.Attributes["default"] != nil:
			in.vars[name] = in.eval(block.Body.Attributes["default"].Expr, "default of var."+name)
		case ok:
			in.vars[name] = v
		default:
			in.vars[name] = cty.DynamicVal
		}
		if ty := block.Body.Attributes["type"]; ty != nil {
			in.vars[name] = typed(ty.Expr, in.vars[name])
		}
	}
	for name := range args {
		if _, ok := in.vars[name]; !ok {
			t.Fatalf("%s (%s): the call passes %q, which is not a variable of the module", address, dir, name)
		}
	}

	// Locals, in dependency order.
	pending := map[string]hclsyntax.Expression{}
	for _, block := range m.blocks("locals") {
		for name, attr := range block.Body.Attributes {
			pending[name] = attr.Expr
		}
	}
	for len(pending) > 0 {
		progress := false
		for name, expr := range pending {
			ready := true
			for _, tr := range expr.Variables() {
				if tr.RootName() != "local" || len(tr) < 2 {
					continue
				}
				if attr, ok := tr[1].(hcl.TraverseAttr); ok {
					if _, waiting := pending[attr.Name]; waiting {
						ready = false
					}
				}
			}
			if ready {
				in.locals[name] = in.eval(expr, "local."+name)
				delete(pending, name)
				progress = true
			}
		}
		if !progress {
			for name := range pending {
				in.problems = append(in.problems, "local."+name+": cyclic or undefined references")
				in.locals[name] = cty.DynamicVal
			}
			break
		}
	}

	// Module calls with a local source, one instance per key of a for_each.
	for _, block := range m.blocks("module") {
		name := block.Labels[0]
		srcAttr := block.Body.Attributes["source"]
		if srcAttr == nil {
			t.Fatalf("%s: module %q has no source", dir, name)
		}
		src, diags := srcAttr.Expr.Value(nil)
		if diags.HasErrors() || src.Type() != cty.String {
			t.Fatalf("%s: module %q: source is not a literal string", dir, name)
		}
		source := src.AsString()
		if !strings.HasPrefix(source, "./") && !strings.HasPrefix(source, "../") {
			continue // a registry module: nothing of ours to evaluate
		}
		for key, each := range in.forEach(t, block) {
			childArgs := map[string]cty.Value{}
			for argName, attr := range block.Body.Attributes {
				switch argName {
				case "source", "version", "providers", "depends_on", "count", "for_each":
					continue
				}
				childArgs[argName] = in.evalWith(attr.Expr, fmt.Sprintf("module.%s%s argument %s", name, key, argName), eachVar(each))
			}
			childAddress := "module." + name + key
			if address != "" {
				childAddress = address + "." + childAddress
			}
			child := newTFInstance(t, childAddress, filepath.Join(dir, source), workspace, childArgs)
			child.parent = in
			child.callBlock = block
			child.each = each
			in.children[name+key] = child
		}
	}
	return in
}

// forEach returns the instances of a module call by their address suffix: `["key"]` with each
// set for every key of a for_each (which must be known), or "" with no each for any other call.
func (in *tfInstance) forEach(t *testing.T, block *hclsyntax.Block) map[string]cty.Value {
	t.Helper()
	attr := block.Body.Attributes["for_each"]
	if attr == nil {
		return map[string]cty.Value{"": cty.NilVal}
	}
	v := in.eval(attr.Expr, "module."+block.Labels[0]+" for_each")
	if !v.IsKnown() || v.IsNull() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
		t.Fatalf("%s: module %q: for_each is not a known map or object; problems:\n  %s",
			in.module.dir, block.Labels[0], strings.Join(in.allProblems(), "\n  "))
	}
	out := map[string]cty.Value{}
	for it := v.ElementIterator(); it.Next(); {
		k, value := it.Element()
		out[fmt.Sprintf("[%q]", k.AsString())] = cty.ObjectVal(map[string]cty.Value{"key": k, "value": value})
	}
	return out
}

func eachVar(each cty.Value) map[string]cty.Value {
	if each == cty.NilVal {
		return nil
	}
	return map[string]cty.Value{"each": each}
}

// typed converts a variable's value to its type constraint, as Terraform does: optional object
// attributes a caller leaves out are added (null, or their default), so the module can read them.
// A value that does not convert stays as it is.
func typed(typeExpr hclsyntax.Expression, v cty.Value) cty.Value {
	ty, defaults, diags := typeexpr.TypeConstraintWithDefaults(typeExpr)
	if diags.HasErrors() {
		return v
	}
	if defaults != nil {
		v = defaults.Apply(v)
	}
	if c, err := convert.Convert(v, ty); err == nil {
		return c
	}
	return v
}

// tfRoot evaluates terraform/ for a workspace.
func tfRoot(t *testing.T, workspace string) *tfInstance {
	t.Helper()
	return newTFInstance(t, "", filepath.Join(repoRoot(t), "terraform"), workspace, nil)
}

// resources returns every resource block of a type in the instance tree.
func (in *tfInstance) resources(typ string) []tfBlock {
	var out []tfBlock
	for _, block := range in.module.blocks("resource") {
		if block.Labels[0] == typ {
			out = append(out, tfBlock{in, block})
		}
	}
	names := make([]string, 0, len(in.children))
	for name := range in.children {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, in.children[name].resources(typ)...)
	}
	return out
}

// resource returns the resource typ.name declared in the same module instance.
func (in *tfInstance) resource(typ, name string) (tfBlock, bool) {
	for _, block := range in.module.blocks("resource") {
		if block.Labels[0] == typ && block.Labels[1] == name {
			return tfBlock{in, block}, true
		}
	}
	return tfBlock{}, false
}

// nested returns the nested blocks of a type (load_balancer, runtime_platform, ...).
func (b tfBlock) nested(typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, block := range b.block.Body.Blocks {
		if block.Type == typ {
			out = append(out, block)
		}
	}
	return out
}

// tfBody is the body of a nested block as Terraform expands it, with the names its expressions
// need: the iterator of a dynamic block.
type tfBody struct {
	body  *hclsyntax.Body
	names map[string]cty.Value
}

// expanded returns the nested blocks of a type: static ones as they are, and a dynamic block
// once per element of its for_each (which must be known).
func (b tfBlock) expanded(t *testing.T, typ string) []tfBody {
	t.Helper()
	var out []tfBody
	for _, block := range b.nested(typ) {
		out = append(out, tfBody{body: block.Body})
	}
	for _, block := range b.nested("dynamic") {
		if len(block.Labels) != 1 || block.Labels[0] != typ || block.Body.Attributes["for_each"] == nil {
			continue
		}
		v := b.instance.eval(block.Body.Attributes["for_each"].Expr, b.address()+" dynamic "+typ+" for_each")
		if !v.IsKnown() || v.IsNull() || !v.CanIterateElements() {
			t.Fatalf("%s: the for_each of dynamic %q is not known; problems:\n  %s", b.address(), typ, strings.Join(b.instance.allProblems(), "\n  "))
		}
		var content *hclsyntax.Body
		for _, c := range block.Body.Blocks {
			if c.Type == "content" {
				content = c.Body
			}
		}
		for it := v.ElementIterator(); it.Next(); {
			k, value := it.Element()
			out = append(out, tfBody{body: content, names: map[string]cty.Value{typ: cty.ObjectVal(map[string]cty.Value{"key": k, "value": value})}})
		}
	}
	return out
}

// stringAttr evaluates an argument of body to a known string.
func (b tfBlock) stringAttr(t *testing.T, body *hclsyntax.Body, name string) string {
	t.Helper()
	return b.stringAttrWith(t, tfBody{body: body}, name)
}

func (b tfBlock) stringAttrWith(t *testing.T, body tfBody, name string) string {
	t.Helper()
	attr := body.body.Attributes[name]
	if attr == nil {
		t.Fatalf("%s has no argument %s", b.address(), name)
	}
	v := b.instance.evalWith(attr.Expr, b.address()+"."+name, body.names)
	if !v.IsWhollyKnown() || v.IsNull() || v.Type() != cty.String {
		t.Fatalf("%s.%s does not evaluate to a known string (got %#v); problems on the way:\n  %s",
			b.address(), name, v, strings.Join(b.instance.allProblems(), "\n  "))
	}
	return v.AsString()
}

// reference reads an argument that refers to another resource, such as
// cluster = aws_ecs_cluster.this.arn (a resource of the same module) or
// task_definition = module.task.task_definition_arn (the resource that output of a called module
// refers to, followed through further calls), and returns that resource.
func (b tfBlock) reference(t *testing.T, arg, typ string) tfBlock {
	t.Helper()
	attr := b.block.Body.Attributes[arg]
	if attr == nil {
		t.Fatalf("%s has no argument %s", b.address(), arg)
	}
	if target, ok := b.instance.resolve(attr.Expr, typ); ok {
		return target
	}
	t.Fatalf("%s.%s does not refer to a %s of the same module or, through an output, of a module it calls", b.address(), arg, typ)
	return tfBlock{}
}

// resolve returns the resource of type typ an expression of the instance refers to, directly, through
// the output of a module call (module.x.out, module.x["key"].out, module.x[each.key].out), or
// through an input variable (the argument of the call that created the instance).
func (in *tfInstance) resolve(expr hclsyntax.Expression, typ string) (tfBlock, bool) {
	for _, tr := range expr.Variables() {
		if len(tr) < 2 {
			continue
		}
		name, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		switch tr.RootName() {
		case typ:
			if target, ok := in.resource(typ, name.Name); ok {
				return target, true
			}
		case "var":
			if in.callBlock == nil || in.callBlock.Body.Attributes[name.Name] == nil {
				continue
			}
			if target, ok := in.parent.resolveIn(in.callBlock.Body.Attributes[name.Name].Expr, typ, eachVar(in.each)); ok {
				return target, true
			}
		case "module":
			key, rest := "", tr[2:]
			if len(rest) > 0 {
				if index, ok := rest[0].(hcl.TraverseIndex); ok && index.Key.Type() == cty.String {
					key, rest = fmt.Sprintf("[%q]", index.Key.AsString()), rest[1:]
				}
			}
			if target, ok := in.resolveOutput(name.Name+key, rest, typ); ok {
				return target, true
			}
		}
	}
	return tfBlock{}, false
}

// resolveIn is resolve of an expression of this instance evaluated with further names (each of
// the call being followed): it also follows module.x[<expression>].out.
func (in *tfInstance) resolveIn(expr hclsyntax.Expression, typ string, extra map[string]cty.Value) (tfBlock, bool) {
	if rel, ok := expr.(*hclsyntax.RelativeTraversalExpr); ok {
		if index, ok := rel.Source.(*hclsyntax.IndexExpr); ok {
			if coll, ok := index.Collection.(*hclsyntax.ScopeTraversalExpr); ok && coll.Traversal.RootName() == "module" && len(coll.Traversal) == 2 {
				key := in.evalWith(index.Key, "module index", extra)
				name, isAttr := coll.Traversal[1].(hcl.TraverseAttr)
				if isAttr && key.IsKnown() && !key.IsNull() && key.Type() == cty.String {
					return in.resolveOutput(fmt.Sprintf("%s[%q]", name.Name, key.AsString()), rel.Traversal, typ)
				}
			}
		}
	}
	return in.resolve(expr, typ)
}

// resolveOutput follows module.<child>.<output> to the resource of type typ the output refers to.
func (in *tfInstance) resolveOutput(child string, rest hcl.Traversal, typ string) (tfBlock, bool) {
	instance := in.children[child]
	if instance == nil || len(rest) == 0 {
		return tfBlock{}, false
	}
	out, ok := rest[0].(hcl.TraverseAttr)
	if !ok {
		return tfBlock{}, false
	}
	if value := instance.outputValue(out.Name); value != nil {
		return instance.resolve(value, typ)
	}
	return tfBlock{}, false
}

// outputValue returns the value expression of an output of the instance's module, or nil.
func (in *tfInstance) outputValue(name string) hclsyntax.Expression {
	for _, block := range in.module.blocks("output") {
		if block.Labels[0] == name && block.Body.Attributes["value"] != nil {
			return block.Body.Attributes["value"].Expr
		}
	}
	return nil
}

// allProblems collects the evaluation problems of the instance and its ancestors.
func (in *tfInstance) allProblems() []string {
	var out []string
	for i := in; i != nil; i = i.parent {
		for _, p := range i.problems {
			out = append(out, strings.TrimPrefix(i.address+" ", " ")+p)
		}
	}
	return out
}

// tfNames is what the deploy workflow must agree on with Terraform, for one workspace.
type tfNames struct {
	ECRRepository        string
	ECSCluster           string
	ECSService           string
	TaskDefinitionFamily string
	Container            string
	CPUArchitecture      string
	// The ingest worker: the one ECS service without a load balancer.
	WorkerService              string
	WorkerTaskDefinitionFamily string
	WorkerCluster              string
}

// terraformNames finds the API's ECS service (the one behind the load balancer), its cluster and
// task definition (the resources its arguments refer to: in its module, through the output of a
// module call, or through the argument of the call that created its module), the container the
// load balancer sends traffic to, and the ECR repository of the module whose output the task's
// image is built from, and evaluates their names for the workspace. The worker's service (the one
// without a load balancer) and task definition are found the same way.
func terraformNames(t *testing.T, workspace string) tfNames {
	t.Helper()
	root := tfRoot(t, workspace)

	var services, workers []tfBlock
	for _, svc := range root.resources("aws_ecs_service") {
		if len(svc.expanded(t, "load_balancer")) > 0 {
			services = append(services, svc)
		} else {
			workers = append(workers, svc)
		}
	}
	if len(workers) > 1 {
		t.Fatalf("want at most one aws_ecs_service without a load balancer (the worker), found %d", len(workers))
	}
	if len(services) != 1 {
		var addrs []string
		for _, s := range services {
			addrs = append(addrs, s.address())
		}
		t.Fatalf("want exactly one aws_ecs_service with a load_balancer block under terraform/, found %d %v", len(services), addrs)
	}
	svc := services[0]
	var n tfNames
	n.ECSService = svc.stringAttr(t, svc.block.Body, "name")

	cluster := svc.reference(t, "cluster", "aws_ecs_cluster")
	n.ECSCluster = cluster.stringAttr(t, cluster.block.Body, "name")

	taskDef := svc.reference(t, "task_definition", "aws_ecs_task_definition")
	n.TaskDefinitionFamily = taskDef.stringAttr(t, taskDef.block.Body, "family")

	lbs := svc.expanded(t, "load_balancer")
	if len(lbs) != 1 {
		t.Fatalf("%s: want one load_balancer block, found %d", svc.address(), len(lbs))
	}
	n.Container = svc.stringAttrWith(t, lbs[0], "container_name")
	if names := containerNames(t, taskDef); !contains(names, n.Container) {
		t.Fatalf("%s: the load balancer's container %q is not among the containers %v of %s",
			svc.address(), n.Container, names, taskDef.address())
	}

	n.CPUArchitecture = "X86_64" // the ECS default without runtime_platform
	if rp := taskDef.nested("runtime_platform"); len(rp) == 1 && rp[0].Body.Attributes["cpu_architecture"] != nil {
		n.CPUArchitecture = taskDef.stringAttr(t, rp[0].Body, "cpu_architecture")
	}

	// The repository: the `image` argument of the call of the task definition's module is built
	// from an output of a sibling module call; that module holds the aws_ecr_repository.
	taskInstance := taskDef.instance
	if taskInstance.callBlock == nil {
		t.Fatalf("%s: the task definition is in the root module; expected it in a module called with an image argument", taskDef.address())
	}
	imageArg := taskInstance.callBlock.Body.Attributes["image"]
	if imageArg == nil {
		t.Fatalf("%s: the call of the module with the task definition has no `image` argument", taskInstance.address)
	}
	var repos []tfBlock
	for _, tr := range imageArg.Expr.Variables() {
		if tr.RootName() != "module" || len(tr) < 2 {
			continue
		}
		if name, ok := tr[1].(hcl.TraverseAttr); ok {
			if child := taskInstance.parent.children[name.Name]; child != nil {
				repos = append(repos, child.resources("aws_ecr_repository")...)
			}
		}
	}
	if len(repos) != 1 {
		t.Fatalf("%s: the image argument should come from the output of a module with exactly one aws_ecr_repository; found %d",
			taskInstance.address, len(repos))
	}
	n.ECRRepository = repos[0].stringAttr(t, repos[0].block.Body, "name")

	for _, w := range workers {
		n.WorkerService = w.stringAttr(t, w.block.Body, "name")
		wc := w.reference(t, "cluster", "aws_ecs_cluster")
		n.WorkerCluster = wc.stringAttr(t, wc.block.Body, "name")
		wt := w.reference(t, "task_definition", "aws_ecs_task_definition")
		n.WorkerTaskDefinitionFamily = wt.stringAttr(t, wt.block.Body, "family")
	}
	return n
}

// containerNames evaluates container_definitions = jsonencode([...]) of a task definition and
// returns the names of its containers.
func containerNames(t *testing.T, taskDef tfBlock) []string {
	t.Helper()
	attr := taskDef.block.Body.Attributes["container_definitions"]
	if attr == nil {
		t.Fatalf("%s has no container_definitions", taskDef.address())
	}
	expr := attr.Expr
	if call, ok := expr.(*hclsyntax.FunctionCallExpr); ok && call.Name == "jsonencode" && len(call.Args) == 1 {
		expr = call.Args[0]
	} else {
		t.Fatalf("%s.container_definitions: expected jsonencode([...])", taskDef.address())
	}
	v := taskDef.instance.eval(expr, taskDef.address()+".container_definitions")
	if !v.IsKnown() || v.IsNull() || !(v.Type().IsTupleType() || v.Type().IsListType()) {
		t.Fatalf("%s.container_definitions: not a known list of containers; problems:\n  %s",
			taskDef.address(), strings.Join(taskDef.instance.allProblems(), "\n  "))
	}
	var names []string
	for it := v.ElementIterator(); it.Next(); {
		_, c := it.Element()
		if !c.IsKnown() || c.IsNull() || !c.Type().IsObjectType() || !c.Type().HasAttribute("name") {
			t.Fatalf("%s.container_definitions: a container without a known name", taskDef.address())
		}
		name := c.GetAttr("name")
		if !name.IsKnown() || name.IsNull() || name.Type() != cty.String {
			t.Fatalf("%s.container_definitions: a container name is not a known string", taskDef.address())
		}
		names = append(names, name.AsString())
	}
	return names
}

// terraformWorkspaces returns the workspaces the configuration has settings for: the keys of the
// workspace_settings local (any workspace outside it is refused by a precondition).
func terraformWorkspaces(t *testing.T) []string {
	t.Helper()
	var found []string
	var walk func(in *tfInstance)
	walk = func(in *tfInstance) {
		if v, ok := in.locals["workspace_settings"]; ok {
			if !v.IsKnown() || v.IsNull() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
				t.Fatalf("%s: local.workspace_settings is not a known object", in.module.dir)
			}
			for it := v.ElementIterator(); it.Next(); {
				k, _ := it.Element()
				found = append(found, k.AsString())
			}
		}
		for _, child := range in.children {
			walk(child)
		}
	}
	walk(tfRoot(t, "default"))
	if len(found) == 0 {
		t.Fatal("no local.workspace_settings under terraform/: cannot tell the Terraform workspaces")
	}
	sort.Strings(found)
	return found
}

// terraformRequiredVersion returns the minimum of required_version (">= X.Y[.Z]") of the root.
func terraformRequiredVersion(t *testing.T) string {
	t.Helper()
	m := loadTFModule(t, filepath.Join(repoRoot(t), "terraform"))
	for _, block := range m.blocks("terraform") {
		attr := block.Body.Attributes["required_version"]
		if attr == nil {
			continue
		}
		v, diags := attr.Expr.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String {
			t.Fatal("terraform/: required_version is not a literal string")
		}
		constraint := strings.TrimSpace(v.AsString())
		if minimum, ok := strings.CutPrefix(constraint, ">="); ok && !strings.Contains(minimum, ",") {
			return strings.TrimSpace(minimum)
		}
		t.Fatalf("terraform/: required_version %q: only \">= X.Y\" is understood by this test", constraint)
	}
	t.Fatal("terraform/: no required_version")
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Guard against testing a tree without Terraform at all (for example a partial checkout).
func TestTerraformTreePresent(t *testing.T) {
	if _, err := os.Stat(filepath.Join(repoRoot(t), "terraform", "versions.tf")); err != nil {
		t.Fatalf("terraform/versions.tf: %v", err)
	}
}
