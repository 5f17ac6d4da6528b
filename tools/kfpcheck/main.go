// Command kfpcheck asks the Kubeflow Pipelines backend's own Go packages whether they accept compiled pipelines.
//
// For each compiled pipeline YAML (a KFP v2 pipeline spec document, optionally followed by a `---` and a
// platform spec document) it does what the KFP API server's ResourceManager.CreateRun does before it creates
// the Argo Workflow object:
//
//  1. template.New(manifest): parse the manifest (pipeline spec + Kubernetes platform spec),
//  2. tmpl.RunWorkflow(run, options): check the run's parameters against the root inputs and compile the
//     Argo Workflow with backend/src/v2/compiler/argocompiler,
//  3. executionSpec.Validate(false, false): Argo's own validate.ValidateWorkflow on that Workflow.
//
// It prints one line per file: the file, the pipeline name, "accepted" or "refused: <the backend's error>",
// and the number of Argo templates. With -driver it also parses each task's Kubernetes config the way this
// backend's driver does when the run starts (a later step than the API server's). The exit status is 1 when
// any file is refused, 2 on usage errors.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/golang/protobuf/jsonpb"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/kubeflow/pipelines/backend/src/apiserver/model"
	"github.com/kubeflow/pipelines/backend/src/apiserver/template"
	"github.com/kubeflow/pipelines/backend/src/common/util"
	"github.com/kubeflow/pipelines/kubernetes_platform/go/kubernetesplatform"
	"google.golang.org/protobuf/encoding/protojson"
	goyaml "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

// runID stands in for the UUID the API server gives a new run; it replaces {{workflow.uid}} in the Workflow.
const runID = "00000000-0000-4000-8000-00000000c4ec"

// result is what the backend said about one pipeline file.
type result struct {
	name      string
	err       error
	templates int
	workflow  []byte
}

func main() {
	dump := flag.String("workflow-dir", "", "also write each accepted pipeline's Argo Workflow (YAML) into this folder")
	namespace := flag.String("namespace", "kubeflow", "the run's namespace (the API server writes it into the Workflow)")
	driver := flag.Bool("driver", false, "also parse each executor's Kubernetes config as this backend's driver does "+
		"when the run starts (not an API server step; a refusal there counts too)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: kfpcheck [-workflow-dir DIR] [-namespace NS] [-driver] PIPELINE.yaml...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	refused := 0
	for _, path := range flag.Args() {
		res := check(path, *namespace)
		status := "accepted"
		if res.err != nil {
			refused++
			status = "refused: " + oneLine(res.err.Error())
		} else if *dump != "" {
			if err := writeWorkflow(*dump, path, res.workflow); err != nil {
				fmt.Fprintf(os.Stderr, "kfpcheck: %v\n", err)
				os.Exit(2)
			}
		}
		name := res.name
		if name == "" {
			name = "-"
		}
		line := fmt.Sprintf("%s  %s  %s  templates=%d", filepath.Base(path), name, status, res.templates)
		if *driver && res.err == nil {
			if err := driverParsesKubernetesConfig(path); err != nil {
				refused++
				line += "  driver refuses: " + oneLine(err.Error())
			} else {
				line += "  driver accepts"
			}
		}
		fmt.Println(line)
	}
	if refused > 0 {
		os.Exit(1)
	}
}

// check runs one compiled pipeline file through the API server's run-creation steps.
func check(path, namespace string) result {
	manifest, err := os.ReadFile(path)
	if err != nil {
		return result{err: err}
	}
	tmpl, err := template.New(manifest)
	if err != nil {
		return result{err: util.Wrap(err, "Failed to fetch a template with an invalid pipeline spec manifest")}
	}
	res := result{name: tmpl.V2PipelineName()}
	params, err := placeholderParameters(manifest)
	if err != nil {
		res.err = err
		return res
	}
	run := &model.Run{
		UUID:        runID,
		DisplayName: "kfpcheck " + filepath.Base(path),
		Namespace:   namespace,
		PipelineSpec: model.PipelineSpec{
			PipelineSpecManifest: string(manifest),
			RuntimeConfig:        model.RuntimeConfig{Parameters: params},
		},
	}
	executionSpec, err := tmpl.RunWorkflow(run, template.RunWorkflowOptions{RunId: run.UUID})
	if err != nil {
		res.err = util.Wrap(err, "Failed to generate the ExecutionSpec")
		return res
	}
	if wf, ok := executionSpec.(*util.Workflow); ok {
		res.templates = len(wf.Spec.Templates)
	}
	if err := executionSpec.Validate(false, false); err != nil {
		res.err = util.NewInternalServerError(err, "Failed to validate workflow for (%+v)", executionSpec.ExecutionName())
		return res
	}
	res.workflow, res.err = yaml.JSONToYAML([]byte(executionSpec.ToStringForStore()))
	return res
}

// placeholderParameters gives every required root input parameter (not optional, no default) a value of its
// type, as a user creating a run must: the API server refuses a run that leaves one out. Parameters with a
// default are left to their default.
func placeholderParameters(manifest []byte) (string, error) {
	spec, err := pipelineSpec(manifest)
	if err != nil {
		return "", err
	}
	values := map[string]interface{}{}
	for name, param := range spec.GetRoot().GetInputDefinitions().GetParameters() {
		if param.GetIsOptional() || param.GetDefaultValue() != nil {
			continue
		}
		switch param.GetParameterType() {
		case pipelinespec.ParameterType_STRING:
			values[name] = "kfpcheck"
		case pipelinespec.ParameterType_NUMBER_DOUBLE, pipelinespec.ParameterType_NUMBER_INTEGER:
			values[name] = 0
		case pipelinespec.ParameterType_BOOLEAN:
			values[name] = false
		case pipelinespec.ParameterType_LIST:
			values[name] = []interface{}{}
		case pipelinespec.ParameterType_STRUCT:
			values[name] = map[string]interface{}{}
		}
	}
	if len(values) == 0 {
		return "", nil
	}
	encoded, err := json.Marshal(values)
	return string(encoded), err
}

// pipelineSpec reads the pipeline spec document of a compiled pipeline the way the backend's template parser
// does (YAML document -> JSON -> protojson), for the root's input definitions.
func pipelineSpec(manifest []byte) (*pipelinespec.PipelineSpec, error) {
	decoder := goyaml.NewDecoder(bytes.NewReader(manifest))
	for {
		var value map[string]interface{}
		if err := decoder.Decode(&value); err != nil {
			return nil, fmt.Errorf("no pipeline spec document: %w", err)
		}
		if _, ok := value["root"]; !ok {
			continue // the platform spec document
		}
		jsonData, err := json.Marshal(value)
		if err != nil {
			return nil, err
		}
		var spec pipelinespec.PipelineSpec
		if err := protojson.Unmarshal(jsonData, &spec); err != nil {
			return nil, err
		}
		return &spec, nil
	}
}

// writeWorkflow saves an accepted pipeline's Workflow as DIR/<file stem>.workflow.yaml.
func writeWorkflow(dir, path string, workflow []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return os.WriteFile(filepath.Join(dir, stem+".workflow.yaml"), workflow, 0o644)
}

// oneLine keeps a multi-line backend error on the pipeline's single output line.
func oneLine(message string) string {
	return strings.Join(strings.Fields(message), " ")
}

// driverParsesKubernetesConfig does what this backend's driver (backend/src/v2/cmd/driver) does with the
// --kubernetes_config argument the compiler gives each task: jsonpb.UnmarshalString into the
// KubernetesExecutorConfig of the kubernetes_platform module this backend was built with.
func driverParsesKubernetesConfig(path string) error {
	manifest, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// The platform spec document, picked out as template.NewV2SpecTemplate does.
	var platformSpec pipelinespec.PlatformSpec
	decoder := goyaml.NewDecoder(bytes.NewReader(manifest))
	for {
		var value map[string]interface{}
		if err := decoder.Decode(&value); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		document, err := goyaml.Marshal(&value)
		if err != nil {
			return err
		}
		if !template.IsPlatformSpecWithKubernetesConfig(document) {
			continue
		}
		platformJSON, err := yaml.YAMLToJSON(document)
		if err != nil {
			return err
		}
		if err := protojson.Unmarshal(platformJSON, &platformSpec); err != nil {
			return err
		}
	}
	executors := platformSpec.GetPlatforms()["kubernetes"].GetDeploymentSpec().GetExecutors()
	names := make([]string, 0, len(executors))
	for name := range executors {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		config, err := protojson.Marshal(executors[name])
		if err != nil {
			return err
		}
		if err := jsonpb.UnmarshalString(string(config), &kubernetesplatform.KubernetesExecutorConfig{}); err != nil {
			return fmt.Errorf("%s: failed to unmarshal Kubernetes config, error: %w", name, err)
		}
	}
	return nil
}
