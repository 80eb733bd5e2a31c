# tflint configuration of the Terraform tree (terraform/). Run from the repository root:
#   tflint --chdir=terraform --recursive --config="$PWD/.tflint.hcl"
# Only the terraform ruleset bundled with tflint is used (no plugin download).

config {
  # Also inspect calls to the local modules (../modules/*) with the values passed to them.
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "recommended"
}

# On top of the recommended preset: every variable and output carries a description, names are
# snake_case, and each module keeps the standard main.tf / variables.tf / outputs.tf layout.
rule "terraform_documented_variables" {
  enabled = true
}

rule "terraform_documented_outputs" {
  enabled = true
}

rule "terraform_naming_convention" {
  enabled = true
}

rule "terraform_standard_module_structure" {
  enabled = true
}

rule "terraform_comment_syntax" {
  enabled = true
}
