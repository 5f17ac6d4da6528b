// mlmdprobe: the KFP backend's own MLMD client (backend/src/v2/metadata, what the driver and launcher call)
// run through the calls of one task against an MLMD gRPC server: pipeline + run contexts, the root DAG
// execution, a container execution under it, an output artifact, publishing, and reading it all back.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/kubeflow/pipelines/backend/src/v2/metadata"
	pb "github.com/kubeflow/pipelines/third_party/ml-metadata/go/ml_metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

func check(step string, err error) {
	if err != nil {
		fmt.Printf("%s: FAILED: %v\n", step, err)
		os.Exit(1)
	}
	fmt.Printf("%s: ok\n", step)
}

func main() {
	ctx := context.Background()
	client, err := metadata.NewClient(os.Args[1], os.Args[2])
	check("NewClient", err)
	pipeline, err := client.GetPipeline(ctx, "mlkeel-training", "run-"+os.Args[3], "kubeflow", "workflows.argoproj.io/mlkeel-training-x", "minio://mlpipeline/v2/artifacts")
	check(fmt.Sprintf("GetPipeline (pipeline ctx %d, run ctx %d, root %s)", pipeline.GetCtxID(), pipeline.GetRunCtxID(), pipeline.GetPipelineRoot()), err)
	root, err := client.CreateExecution(ctx, pipeline, &metadata.ExecutionConfig{TaskName: "root", ExecutionType: metadata.DagExecutionTypeName,
		InputParameters: map[string]*structpb.Value{"estimator": structpb.NewStringValue("hist_gradient_boosting")}})
	check("CreateExecution root DAG", err)
	task, err := client.CreateExecution(ctx, pipeline, &metadata.ExecutionConfig{TaskName: "train", ExecutionType: metadata.ContainerExecutionTypeName,
		ParentDagID: root.GetID(), Image: "mlkeel:dev", PodName: "p", PodUID: "u", Namespace: "kubeflow", FingerPrint: "fp"})
	check(fmt.Sprintf("CreateExecution container (id %d)", task.GetID()), err)
	artifact, err := client.RecordArtifact(ctx, "model", "title: system.Model\ntype: object\n",
		&pipelinespec.RuntimeArtifact{Uri: "minio://mlpipeline/v2/artifacts/model"}, pb.Artifact_LIVE)
	check("RecordArtifact", err)
	err = client.PublishExecution(ctx, task, map[string]*structpb.Value{"auc": structpb.NewNumberValue(0.84)},
		[]*metadata.OutputArtifact{artifact}, pb.Execution_COMPLETE)
	check("PublishExecution", err)
	dag, err := client.GetDAG(ctx, root.GetID())
	check("GetDAG", err)
	executions, err := client.GetExecutionsInDAG(ctx, dag, pipeline)
	check(fmt.Sprintf("GetExecutionsInDAG (%d)", len(executions)), err)
	outputs, err := client.GetOutputArtifactsByExecutionId(ctx, task.GetID())
	check(fmt.Sprintf("GetOutputArtifactsByExecutionId (%d: %s)", len(outputs), outputs["model"].Artifact.GetUri()), err)
	matched, err := client.FindMatchedArtifact(ctx, artifact.Artifact, pipeline.GetCtxID())
	check(fmt.Sprintf("FindMatchedArtifact (%v)", matched != nil), err)
}
