// Package deploytest checks the deployment artefacts that live outside Go
// code — the Dockerfile and .dockerignore — against the repository, and
// builds and starts exactly what the container image would run. No Docker
// engine is needed: the tests read the Dockerfile, repeat its go build, and
// run the binary the way ECS would, against the AWS emulators.
package deploytest
