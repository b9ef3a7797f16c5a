"""The paper's evaluation protocol: 1, 10, 12 and 144 crops, single models and ensembles
(Tables 2-5 of Szegedy et al. 2016).

    python evaluate.py --models=runs/irv2 --data_dir=data
    python evaluate.py --models=runs/v4,runs/irv2_a,runs/irv2_b,runs/irv2_c --crops=144 \
        --dataset=imagenet2012 --data_dir=data --output=ensemble.json
    python evaluate.py --models=imported/inception_v4.keras --crops=1,10 --max_images=1000

Each --models entry is a training run directory (ema_model.keras, labels.txt, run_config.json)
or a .keras classifier; members may have different input sizes. Prints the estimated time before
the pass over the data, a progress bar, then top-1/3/5 errors per model and protocol (and of the
ensemble of all models: softmax probabilities averaged over models and crops) as a table laid out
like the paper's, and writes them to --output. See README "Evaluation protocols".
Installed as ``inception-evaluate``; the code is ``inception_cli/evaluate.py`` (flags ->
EvaluateConfig) and ``inception/evaluation/job.py``.
"""

from inception_cli.evaluate import main

if __name__ == "__main__":
    main()
