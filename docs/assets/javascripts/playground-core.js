// The playground's trainer: DPO and its relatives on a table of logits, in float64.
// The twin of dpo_ref/playground.py, step for step: that module computes each loss with
// dpo_ref.losses and its gradient with autograd, this file writes every gradient out by
// hand, and the browser tests hold the two equal to 1e-9. Read that module's docstring
// for the world, the data and the methods. Runs in the page and in a Web Worker
// (playground-worker.js); it touches neither the DOM nor the network.
(function (root) {
  "use strict";

  const METHODS = ["dpo", "cdpo", "ipo", "kto", "simpo", "rlhf-gt", "rlhf"];
  const LABEL_RULES = ["bradley-terry", "deterministic"];

  // Uniform numbers in [0, 1): a Weyl sequence mixed by murmur3's finaliser, 32-bit integer
  // operations only, so Python's Generator draws the same numbers from the same seed.
  function Generator(seed) {
    let state = seed >>> 0;
    this.uniform = function () {
      state = (state + 0x9E3779B9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85EBCA6B) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xC2B2AE35) >>> 0;
      return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
    };
  }

  // ------------------------------------------------------------------ numerics

  function logSigmoid(x) { return Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x))); }
  function sigmoid(x) { return 1 / (1 + Math.exp(-x)); }

  function logSoftmax(logits) {
    let top = -Infinity;
    for (const v of logits) top = Math.max(top, v);
    let total = 0;
    for (const v of logits) total += Math.exp(v - top);
    const shift = top + Math.log(total);
    return logits.map(function (v) { return v - shift; });
  }

  // ------------------------------------------------------------------ settings

  function fail(message) { throw new Error(message); }

  // Every field of a run, checked as PlaygroundConfig.validate checks it; `defaults`
  // (the page's copy of PlaygroundConfig's) fills what `values` leaves out.
  function makeConfig(values, defaults) {
    const config = Object.assign({}, defaults, values);
    Object.keys(values).forEach(function (key) { if (!(key in defaults)) fail("unknown playground setting " + key); });
    const whole = function (v, lo, hi) { return Number.isInteger(v) && v >= lo && v <= hi; };
    if (!whole(config.answers, 2, 64)) fail("answers must be a whole number from 2 to 64, got " + config.answers);
    if (config.data !== "exact" && !whole(config.data, 1, 100000)) fail("data must be 'exact' or a number of pairs from 1 to 100000, got " + config.data);
    if (LABEL_RULES.indexOf(config.labels) < 0) fail("labels must be one of " + LABEL_RULES.join(", ") + ", got " + config.labels);
    if (!(config.flip >= 0 && config.flip < 0.5)) fail("flip must lie in [0, 0.5), got " + config.flip);
    if (METHODS.indexOf(config.method) < 0) fail("method must be one of " + METHODS.join(", ") + ", got " + config.method);
    if (config.compare !== "" && METHODS.indexOf(config.compare) < 0) fail("compare must be one of " + METHODS.join(", ") + ", got " + config.compare);
    ["beta", "compare_beta", "lr", "compare_lr", "rm_lr"].forEach(function (name) {
      if (!(config[name] > 0)) fail(name + " must be a positive number, got " + config[name]);
    });
    if (!(config.epsilon >= 0 && config.epsilon < 0.5)) fail("epsilon must lie in [0, 0.5), got " + config.epsilon);
    if (!(config.gamma_ratio >= 0) || !(config.rm_l2 >= 0)) fail("gamma_ratio and rm_l2 must be non-negative numbers");
    if (!whole(config.steps, 1, 100000)) fail("steps must be a whole number from 1 to 100000, got " + config.steps);
    return config;
  }

  // ------------------------------------------------------------------ world and data

  function buildWorld(config) {
    const g = new Generator(config.world_seed);
    const n = config.answers;
    const logits = [], rewards = [], lengths = [];
    for (let i = 0; i < n; i++) logits.push(4 * g.uniform() - 2);
    for (let i = 0; i < n; i++) rewards.push(2 * g.uniform() - 1);
    for (let i = 0; i < n; i++) lengths.push(1 + Math.floor(8 * g.uniform()));
    return { n: n, referenceLogps: logSoftmax(logits), rewards: rewards, lengths: lengths };
  }

  function optimumLogps(world, beta) {
    return logSoftmax(world.referenceLogps.map(function (ref, i) { return ref + world.rewards[i] / beta; }));
  }

  // P(i is labelled the winner over j), flips included.
  function preference(config, ri, rj) {
    const p = config.labels === "deterministic" ? (ri > rj ? 1 : ri < rj ? 0 : 0.5) : 1 / (1 + Math.exp(rj - ri));
    return (1 - config.flip) * p + config.flip * (1 - p);
  }

  function draw(cdf, u) {
    for (let i = 0; i < cdf.length; i++) if (u < cdf[i]) return i;
    return cdf.length - 1;
  }

  function buildDataset(config, world) {
    const pi = world.referenceLogps.map(Math.exp);
    const r = world.rewards, n = world.n;
    const chosen = [], rejected = [], weights = [];
    if (config.data === "exact") {
      let same = 0;
      for (const p of pi) same += p * p;
      const distinct = 1 - same;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          if (i === j) continue;
          const w = 2 * pi[i] * pi[j] / distinct * preference(config, r[i], r[j]);
          if (w > 0) { chosen.push(i); rejected.push(j); weights.push(w); }
        }
      }
    } else {
      const g = new Generator(config.data_seed);
      const cdf = [];
      let total = 0;
      for (const p of pi) { total += p; cdf.push(total); }
      for (let k = 0; k < config.data; k++) {
        let i = draw(cdf, g.uniform()), j = draw(cdf, g.uniform());
        while (j === i) { i = draw(cdf, g.uniform()); j = draw(cdf, g.uniform()); } // as the exact data weighs pairs
        const firstWins = g.uniform() < preference(config, r[i], r[j]);
        chosen.push(firstWins ? i : j);
        rejected.push(firstWins ? j : i);
        weights.push(1 / config.data);
      }
    }
    // which answers are ever chosen, ever rejected: 1 chosen, 2 rejected, 3 both
    const role = new Array(n).fill(0);
    for (let k = 0; k < chosen.length; k++) { role[chosen[k]] |= 1; role[rejected[k]] |= 2; }
    return { chosen: chosen, rejected: rejected, weights: weights, role: role };
  }

  // ------------------------------------------------------------------ losses, one pair or row at a time
  // Each returns [loss, d loss / d x] for the quantity x its gradient needs; the same
  // formulas as dpo_ref.losses (the browser test checks the values on shared inputs).

  const losses = {
    // h: the log-ratio margin; cDPO when epsilon > 0
    dpo: function (h, beta, epsilon) {
      const loss = -(1 - epsilon) * logSigmoid(beta * h) - epsilon * logSigmoid(-beta * h);
      return [loss, -(1 - epsilon) * beta * sigmoid(-beta * h) + epsilon * beta * sigmoid(beta * h)];
    },
    ipo: function (h, beta) {
      const gap = h - 1 / (2 * beta);
      return [gap * gap, 2 * gap];
    },
    // rho: log(pi/pi_ref) of one row; kl: the reference point z0
    ktoDesirable: function (rho, kl, beta) {
      const s = sigmoid(beta * (rho - kl));
      return [1 - s, -beta * s * (1 - s)];
    },
    ktoUndesirable: function (rho, kl, beta) {
      const s = sigmoid(beta * (kl - rho));
      return [1 - s, beta * s * (1 - s)];
    },
    // z = beta * (mean log-prob chosen - mean log-prob rejected) - gamma
    simpo: function (z) { return [-logSigmoid(z), -sigmoid(-z)]; },
    // d = r_chosen - r_rejected
    bradleyTerry: function (d) { return [-logSigmoid(d), -sigmoid(-d)]; },
  };

  function fitRewardModel(config, world, data) {
    const n = world.n, c = data.chosen, j = data.rejected, w = data.weights;
    let r = new Array(n).fill(0);
    for (let step = 0; step < config.rm_steps; step++) {
      const grad = r.map(function (v) { return config.rm_l2 * v; });
      for (let k = 0; k < w.length; k++) {
        const d = losses.bradleyTerry(r[c[k]] - r[j[k]])[1] * w[k];
        grad[c[k]] += d;
        grad[j[k]] -= d;
      }
      r = r.map(function (v, i) { return v - config.rm_lr * grad[i]; });
    }
    return r;
  }

  // The loss of `method` at the policy's log-probs, and its gradient in those log-probs.
  function lossAndGradient(method, beta, config, world, data, rewardModel, logp) {
    const n = world.n, ref = world.referenceLogps;
    const c = data.chosen, j = data.rejected, w = data.weights;
    const grad = new Array(n).fill(0);
    let loss = 0;
    if (method === "dpo" || method === "cdpo" || method === "ipo") {
      const epsilon = method === "cdpo" ? config.epsilon : 0;
      for (let k = 0; k < w.length; k++) {
        const h = (logp[c[k]] - ref[c[k]]) - (logp[j[k]] - ref[j[k]]);
        const out = method === "ipo" ? losses.ipo(h, beta) : losses.dpo(h, beta, epsilon);
        loss += w[k] * out[0];
        grad[c[k]] += w[k] * out[1];
        grad[j[k]] -= w[k] * out[1];
      }
    } else if (method === "kto") {
      let kl = 0;
      for (let i = 0; i < n; i++) kl += Math.exp(logp[i]) * (logp[i] - ref[i]);
      kl = Math.max(kl, 0); // z0: the exact KL, held fixed (no gradient), as TRL detaches its estimate
      for (let k = 0; k < w.length; k++) {
        const good = losses.ktoDesirable(logp[c[k]] - ref[c[k]], kl, beta);
        const bad = losses.ktoUndesirable(logp[j[k]] - ref[j[k]], kl, beta);
        loss += w[k] * (good[0] + bad[0]) / 2;
        grad[c[k]] += w[k] * good[1] / 2;
        grad[j[k]] += w[k] * bad[1] / 2;
      }
    } else if (method === "simpo") {
      const gamma = beta * config.gamma_ratio, len = world.lengths;
      for (let k = 0; k < w.length; k++) {
        const out = losses.simpo(beta * (logp[c[k]] / len[c[k]] - logp[j[k]] / len[j[k]]) - gamma);
        loss += w[k] * out[0];
        grad[c[k]] += w[k] * out[1] * beta / len[c[k]];
        grad[j[k]] -= w[k] * out[1] * beta / len[j[k]];
      }
    } else if (method === "rlhf-gt" || method === "rlhf") {
      // minus the KL-regularised objective E_pi[r] - beta KL(pi || pi_ref)
      const reward = method === "rlhf-gt" ? world.rewards : rewardModel;
      for (let i = 0; i < n; i++) {
        const p = Math.exp(logp[i]), inner = reward[i] - beta * (logp[i] - ref[i]);
        loss -= p * inner;
        grad[i] = -p * (inner - beta);
      }
    } else {
      fail("unknown playground method " + method);
    }
    return { loss: loss, grad: grad };
  }

  // ------------------------------------------------------------------ training

  // A trainer over one configuration: its world, data and one run per method. Each
  // update is a step of full-batch gradient descent on the logits; `losses` holds the
  // loss before each update.
  function Trainer(config) {
    this.config = config;
    this.world = buildWorld(config);
    this.data = buildDataset(config, this.world);
    const needsModel = config.method === "rlhf" || config.compare === "rlhf";
    this.rewardModel = needsModel ? fitRewardModel(config, this.world, this.data) : null;
    const specs = [[config.method, config.beta, config.lr]];
    if (config.compare) specs.push([config.compare, config.compare_beta, config.compare_lr]);
    const start = this.world.referenceLogps;
    this.runs = specs.map(function (s) {
      return { method: s[0], beta: s[1], lr: s[2], theta: start.slice(), logp: start.slice(), losses: [], diverged: false };
    });
    this.step = 0;
  }

  Trainer.prototype.update = function (count) {
    for (let t = 0; t < count; t++) {
      for (const run of this.runs) {
        if (run.diverged) continue;
        const out = lossAndGradient(run.method, run.beta, this.config, this.world, this.data, this.rewardModel, run.logp);
        if (!Number.isFinite(out.loss)) { run.diverged = true; continue; }
        run.losses.push(out.loss);
        // through the softmax: d/d theta_k = g_k - pi_k * sum_i g_i
        let total = 0;
        for (const g of out.grad) total += g;
        const theta = run.theta.map(function (v, k) { return v - run.lr * (out.grad[k] - Math.exp(run.logp[k]) * total); });
        run.theta = theta;
        run.logp = logSoftmax(theta);
      }
      this.step += 1;
    }
  };

  // What the page shows of a run now: the same fields as dpo_ref.playground.metrics.
  Trainer.prototype.metrics = function (index) {
    const run = this.runs[index], world = this.world, data = this.data, beta = run.beta;
    const logp = run.logp, ref = world.referenceLogps, opt = optimumLogps(world, beta);
    let reward = 0, klRef = 0, klOpt = 0, chosen = 0, rejected = 0, total = 0;
    const mass = [0, 0, 0, 0]; // by role: none, only chosen, only rejected, both
    for (let i = 0; i < world.n; i++) {
      const p = Math.exp(logp[i]);
      reward += p * world.rewards[i];
      klRef += p * (logp[i] - ref[i]);
      klOpt += p * (logp[i] - opt[i]);
      mass[data.role[i]] += p;
    }
    for (let k = 0; k < data.weights.length; k++) {
      const w = data.weights[k];
      chosen += w * beta * (logp[data.chosen[k]] - ref[data.chosen[k]]);
      rejected += w * beta * (logp[data.rejected[k]] - ref[data.rejected[k]]);
      total += w;
    }
    chosen /= total;
    rejected /= total;
    return {
      reward: reward, kl_ref: klRef, kl_optimum: klOpt,
      chosen_reward: chosen, rejected_reward: rejected, margin: chosen - rejected,
      mass_only_chosen: mass[1], mass_only_rejected: mass[2], mass_both: mass[3],
    };
  };

  // Every run for `steps` updates (default config.steps): what the parity test compares.
  function train(config, steps) {
    const trainer = new Trainer(config);
    trainer.update(steps === undefined ? config.steps : steps);
    return trainer.runs.map(function (run) {
      return { method: run.method, beta: run.beta, losses: run.losses, logps: run.logp, diverged: run.diverged };
    });
  }

  // (KL(pi*_beta || pi_ref), E[r*] under pi*_beta) for each beta: the exact optimal frontier.
  function frontier(world, betas) {
    return betas.map(function (beta) {
      const logp = optimumLogps(world, beta);
      let kl = 0, reward = 0;
      for (let i = 0; i < world.n; i++) {
        const p = Math.exp(logp[i]);
        kl += p * (logp[i] - world.referenceLogps[i]);
        reward += p * world.rewards[i];
      }
      return [kl, reward];
    });
  }

  root.DPOPlayground = {
    METHODS: METHODS, Generator: Generator, makeConfig: makeConfig, buildWorld: buildWorld,
    buildDataset: buildDataset, optimumLogps: optimumLogps, fitRewardModel: fitRewardModel,
    losses: losses, lossAndGradient: lossAndGradient, Trainer: Trainer, train: train, frontier: frontier,
  };
})(typeof self !== "undefined" ? self : this);
