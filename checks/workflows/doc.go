// Package workflows holds the tests of the GitHub Actions workflows in .github/workflows. It has no
// code of its own: `go test ./workflows/` in checks/ (part of `make test`) parses the workflow files
// and checks them against the rest of the repository:
//
//   - the deploy workflow runs after a successful ci of a push to master, the jobs that assume AWS
//     roles have `id-token: write` and assume them through OIDC only (no access keys, no secrets),
//     and the image is tagged with the commit SHA;
//   - each environment applies exactly the Terraform plan its reviewers approved, workspaces are
//     created only where the role may write state, a rollback applies its own commit's Terraform;
//     the plan and apply scripts run against a real Terraform in `make lint`;
//   - the ECR repository, ECS cluster, service, task definition family and container the deploy
//     workflow uses are the ones the Terraform code creates, for every workspace: the HCL of
//     terraform/ is parsed and its names evaluated with the workspace substituted (module calls
//     with for_each expanded per key), so a rename on either side fails the test;
//   - every `make` target a workflow calls exists in the Makefile, and every github.event_name
//     condition names an event that can start the workflow;
//   - actions are pinned to the required major versions or to commit SHAs, no workflow runs on
//     pull_request_target, and secrets never reach a shell script or the log.
//
// actionlint (with shellcheck) lints the same files in `make lint`.
package workflows
