"""The `train` stage: a DDPM over text embeddings only (`kedro run --pipelines=train`)."""

from kedro.pipeline import Node, Pipeline

from diffusion_bridge.pipelines.train import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.train_diffusion_model,
                inputs=["text_embeddings_train", "text_embeddings_val", "modality_means", "params:diffusion"],
                outputs=["diffusion_model", "diffusion_metrics"],
                name="train_diffusion_model",
            )
        ]
    )
