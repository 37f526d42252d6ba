"""The SAKURA label sets and the exact Table I prompt strings."""

import pytest

import audiolens as al

TABLE_I = {
    "gender": ("What is the gender of the speaker in the speech?", "The speaker's gender is",
               "male, female"),
    "language": ("What is the language spoken in the speech?", "The speech's spoken language is",
                 "English, German, Spanish, French, Italian, Chinese, Japanese, Korean"),
    "emotion": ("What is the emotion of the speaker in the speech?", "The speaker's emotion is",
                "angry, disgust, fear, happy, sad"),
    "animal": ("What animal makes the sound?", "The sound file's animal is",
               "dog, cat, pig, cow, frog, hen, rooster, sheep, crow"),
}


@pytest.mark.parametrize("attribute", list(TABLE_I))
def test_table_i_prompts(attribute):
    question, prefix, options = TABLE_I[attribute]
    task = al.sakura_task(attribute)
    p1, p2, p3 = (task.prompt(f) for f in ("P1", "P2", "P3"))
    assert (p1.question, p1.prefix) == (None, prefix)
    assert (p2.question, p2.prefix) == (question, prefix)
    assert (p3.question, p3.prefix) == (f"{question} Possible options: {options}.", prefix)
    assert p3.attribute_word == attribute
    assert len(task.labels) == {"gender": 2, "language": 8, "emotion": 5, "animal": 9}[attribute]


def test_prompts_render_audio_in_the_user_turn(tiny_model):
    from audiolens.architectures.inputs import render_prompt

    text = render_prompt(tiny_model.processor, al.sakura_task("gender").prompt("P2"))
    user, assistant = text.split("<|im_start|>assistant\n")
    assert "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nWhat is the gender" in user
    assert assistant == "The speaker's gender is"  # no end-of-turn token after the prefix
    p1 = render_prompt(tiny_model.processor, al.sakura_task("gender").prompt("P1"))
    assert "What is" not in p1


def test_every_sakura_label_is_one_token_in_the_tiny_tokenizer(tiny_model):
    for task in al.SAKURA_TASKS.values():
        ids = al.label_token_ids(tiny_model.tokenizer, task.labels)
        for label, i in zip(task.labels, ids):
            assert tiny_model.tokenizer.decode([i]) == f" {label}"
