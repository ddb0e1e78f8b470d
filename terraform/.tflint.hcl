# tflint with only its bundled terraform ruleset (works offline; the AWS
# ruleset is a separate download). `make tf-validate` runs it.
config {
  call_module_type = "none"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
