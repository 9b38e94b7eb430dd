// Trains off the main thread for playground.js. Messages in: {cmd: "reset", config}
// builds a trainer; {cmd: "run", steps} makes that many updates (fewer at the end of the
// run). Each answer is a snapshot: the step, each run's last loss, metrics and
// probabilities; a reset's snapshot also carries the world (pi_ref, rewards, lengths,
// the exact frontier) and which answers the data ever chose or rejected.
importScripts("playground-core.js");

(function () {
  "use strict";
  const P = self.DPOPlayground;
  let trainer = null;

  function snapshot(withWorld) {
    const out = {
      step: trainer.step,
      runs: trainer.runs.map(function (run, i) {
        return {
          loss: run.losses.length ? run.losses[run.losses.length - 1] : null,
          diverged: run.diverged,
          probs: run.logp.map(Math.exp),
          metrics: trainer.metrics(i),
        };
      }),
    };
    if (withWorld) {
      const world = trainer.world;
      const betas = [];
      for (let k = 0; k < 90; k++) betas.push(0.02 * Math.pow(1.1, k));
      out.world = {
        reference: world.referenceLogps.map(Math.exp),
        rewards: world.rewards,
        lengths: world.lengths,
        optimum: trainer.runs.map(function (run) { return P.optimumLogps(world, run.beta).map(Math.exp); }),
        frontier: P.frontier(world, betas),
        role: trainer.data.role,
        pairs: trainer.data.weights.length,
      };
    }
    return out;
  }

  self.onmessage = function (event) {
    const message = event.data;
    try {
      if (message.cmd === "reset") {
        trainer = new P.Trainer(message.config);
        self.postMessage({ id: message.id, snapshot: snapshot(true) });
      } else if (message.cmd === "run") {
        const started = performance.now();
        const left = trainer.config.steps - trainer.step;
        trainer.update(Math.max(0, Math.min(message.steps, left)));
        self.postMessage({ id: message.id, snapshot: snapshot(false), ms: performance.now() - started });
      }
    } catch (error) {
      self.postMessage({ id: message.id, error: String(error && error.message || error) });
    }
  };
})();
