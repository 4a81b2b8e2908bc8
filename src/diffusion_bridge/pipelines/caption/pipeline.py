"""The `caption` stage (`kedro run --pipelines=caption`)."""

from kedro.pipeline import Node, Pipeline

from diffusion_bridge.pipelines.caption import nodes

_TEXT = ["decoder_vocabulary", "decoder_train_tokens"]
_VAL = ["validation_representations", "labels_val", "params:caption"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(nodes.tokenise_decoder_captions, inputs=["captions_table", "params:caption"], outputs=_TEXT,
                 name="tokenise_decoder_captions"),
            Node(nodes.train_text_decoder, inputs=["text_embeddings_train", *_TEXT, "modality_means", *_VAL],
                 outputs="caption_decoder_text", name="train_text_decoder"),
            Node(nodes.train_noise_decoder, inputs=["text_embeddings_train", *_TEXT, "modality_means", *_VAL],
                 outputs="caption_decoder_noise", name="train_noise_decoder"),
            Node(nodes.train_augmented_decoder, inputs=["augmented_text_embeddings_train", *_TEXT, *_VAL],
                 outputs="caption_decoder_augmented", name="train_augmented_decoder"),
            Node(
                nodes.caption_test_images,
                inputs=["test_representations", "caption_decoder_text", "caption_decoder_noise", "caption_decoder_augmented",
                        "params:caption"],
                outputs="caption_results",
                name="caption_test_images",
            ),
            Node(
                nodes.score_captions,
                inputs=["caption_results", "test_representations", "labels_test", "images_table", "corpus_report",
                        "bridge_report", "params:caption"],
                outputs="caption_metrics",
                name="score_captions",
            ),
            Node(nodes.write_caption_report, inputs="caption_metrics", outputs=["caption_report", "caption_summary"],
                 name="write_caption_report"),
            Node(nodes.draw_contact_sheet,
                 inputs=["caption_results", "test_representations", "captions_table", "images_table", "params:caption"],
                 outputs="caption_contact_sheet", name="draw_contact_sheet"),
        ]
    )
