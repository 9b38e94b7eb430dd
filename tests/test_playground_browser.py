"""The playground in Chromium: its JavaScript trainer equal to the Python twin, and its widgets at work.

The parity tests run playground-core.js in the page and dpo_ref.playground here on the
same settings, and compare every update's loss and the final probabilities to 1e-9; the
JavaScript losses are compared with dpo_ref.losses on shared inputs. The widget tests
press the buttons a reader presses and check what changes on screen.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
import torch
from site_support import CHROMIUM_ARGS, built_site_once

from dpo_ref import losses
from dpo_ref import playground as pg
from dpo_ref.site.server import CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is required in CI for the browser tests", pytrace=False)
    pytest.skip(f"{CHROMIUM} not found", allow_module_level=True)

EMBEDDED = {
    "/dpo-loss/": "pg-displacement",
    "/beta/": "pg-beta",
    "/dpo-vs-rlhf/": "pg-rlhf",
    "/bigger-picture/": "pg-deterministic",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return built_site_once(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, site, path: str, *, width: int = 1280, scheme: str = "light", hash_: str = ""):
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(site.url.rstrip("/") + path + hash_)
    page.wait_for_function("p => window.dpoSite && window.dpoSite.readyPath === p", arg=path, timeout=30_000)
    page.errors = errors
    return page


def start_widget(page, widget_id: str):
    """Bring a widget into view and wait until its trainer answered and every chart shows step 0."""
    page.hover(f"#{widget_id} .dpo-playground__status")  # a reader's pointer over it starts it
    page.wait_for_function(
        "id => { const w = window.dpoPlayground && window.dpoPlayground.widgets[id]; return w && w.settled(); }",
        arg=widget_id,
        timeout=30_000,
    )


def train_to_end(page, widget_id: str):
    page.click(f'#{widget_id} [data-action="play"]')
    page.wait_for_function(
        "id => { const w = window.dpoPlayground.widgets[id]; return w.finished() && !w.playing; }",
        arg=widget_id,
        timeout=60_000,
    )


def widget_state(page, widget_id: str) -> dict:
    return page.evaluate(
        """id => { const w = window.dpoPlayground.widgets[id];
                   return {config: w.config, step: w.last.step, runs: w.last.runs,
                           status: w.status.textContent, traces: Array.from(w.root.querySelectorAll('[data-chart]'))
                             .map(d => (d.data || []).length)}; }""",
        widget_id,
    )


@pytest.fixture(scope="module")
def core_page(browser, site):
    page = open_page(browser, site, "/playground/")
    start_widget(page, "playground")  # the core is loaded with the widget
    yield page
    page.context.close()


def parity_configs() -> list[pg.PlaygroundConfig]:
    configs = []
    for method, data, (labels, flip), seed in itertools.product(
        pg.PLAYGROUND_METHODS,
        ["exact", 24],
        [("bradley-terry", 0.0), ("deterministic", 0.0), ("bradley-terry", 0.2)],
        [0, 5],
    ):
        lr = 0.5 if method == "ipo" else 5.0
        configs.append(
            pg.PlaygroundConfig(
                method=method,
                data=data,
                labels=labels,
                flip=flip,
                lr=lr,
                steps=60,
                answers=12,
                world_seed=seed + 1,
                data_seed=seed,
            )
        )
    configs.append(pg.preset_config("displacement"))  # a comparison of two runs, as the presets train them
    configs.append(pg.preset_config("meet-at-optimum"))
    return configs


def test_javascript_trainer_equals_the_python_twin(core_page):
    configs = parity_configs()
    defaults = pg.PlaygroundConfig().to_dict()
    js_runs = core_page.evaluate(
        "([configs, defaults]) => configs.map(c => DPOPlayground.train(DPOPlayground.makeConfig(c, defaults)))",
        [[c.to_dict() for c in configs], defaults],
    )
    worst = 0.0
    for config, js in zip(configs, js_runs):
        python = pg.train(config)
        assert len(js) == len(python)
        for ours, theirs in zip(python, js):
            assert not theirs["diverged"] and len(theirs["losses"]) == len(ours.losses) == config.steps
            loss_gap = max(abs(a - b) for a, b in zip(ours.losses, theirs["losses"]))
            prob_gap = float((ours.logps.exp() - torch.tensor(theirs["logps"], dtype=torch.float64).exp()).abs().max())
            assert loss_gap < 1e-9 and prob_gap < 1e-9, (config, ours.method, loss_gap, prob_gap)
            worst = max(worst, loss_gap, prob_gap)
    print(f"largest difference over {len(configs)} configurations: {worst:.1e}")


def test_javascript_generator_world_and_data_equal_the_twins(core_page):
    config = pg.PlaygroundConfig(answers=9, data=50, world_seed=4, data_seed=9, flip=0.1)
    js = core_page.evaluate(
        """c => { const g = new DPOPlayground.Generator(12345); const u = [];
                  for (let k = 0; k < 1000; k++) u.push(g.uniform());
                  const world = DPOPlayground.buildWorld(c); const data = DPOPlayground.buildDataset(c, world);
                  return {u, world, data}; }""",
        config.to_dict(),
    )
    g = pg.Generator(12345)
    assert js["u"] == [g.uniform() for _ in range(1000)]  # bit for bit
    world = pg.build_world(config)
    assert js["world"]["rewards"] == world.rewards.tolist() and js["world"]["lengths"] == world.lengths.tolist()
    data = pg.build_dataset(config, world)
    assert js["data"]["chosen"] == data.chosen.tolist() and js["data"]["rejected"] == data.rejected.tolist()


def test_javascript_losses_equal_dpo_ref_losses(core_page):
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (-torch.rand(64, generator=g, dtype=torch.float64) * 6 for _ in range(4))
    beta, eps, kl = 0.7, 0.15, 0.3
    h = (pc - rc) - (pr - rr)
    js = core_page.evaluate(
        """([h, rc, pc, pr, beta, eps, kl]) => { const L = DPOPlayground.losses;
             return {dpo: h.map(x => L.dpo(x, beta, 0)), cdpo: h.map(x => L.dpo(x, beta, eps)), ipo: h.map(x => L.ipo(x, beta)),
                     good: pc.map((x, i) => L.ktoDesirable(x - rc[i], kl, beta)),
                     bad: pc.map((x, i) => L.ktoUndesirable(x - rc[i], kl, beta)),
                     simpo: pc.map((x, i) => L.simpo(beta * (x / 3 - pr[i] / 5) - beta / 2)),
                     bt: pc.map((x, i) => L.bradleyTerry(x - pr[i]))}; }""",
        [h.tolist(), rc.tolist(), pc.tolist(), pr.tolist(), beta, eps, kl],
    )

    def check(name, values, reference, wrt):
        """JS [loss, derivative] pairs against a dpo_ref loss and its autograd derivative."""
        ours = torch.tensor([v[0] for v in values], dtype=torch.float64)
        slope = torch.tensor([v[1] for v in values], dtype=torch.float64)
        (grad,) = torch.autograd.grad(reference.sum(), wrt)
        assert float((ours - reference.detach()).abs().max()) < 1e-12, name
        assert float((slope - grad).abs().max()) < 1e-12, name

    x = h.clone().requires_grad_(True)  # the losses of pairs depend on the log-ratios through h only
    zero = torch.zeros_like(x)
    check("dpo", js["dpo"], losses.dpo_loss(x, zero, zero, zero, beta=beta), x)
    x = h.clone().requires_grad_(True)
    check("cdpo", js["cdpo"], losses.dpo_loss(x, zero, zero, zero, beta=beta, label_smoothing=eps), x)
    x = h.clone().requires_grad_(True)
    check("ipo", js["ipo"], losses.ipo_loss(x, zero, zero, zero, beta=beta), x)
    for name, desirable in (("good", True), ("bad", False)):
        x = pc.clone().requires_grad_(True)
        flags = torch.full((64,), desirable)
        check(name, js[name], losses.kto_loss(x, rc, flags, torch.tensor(kl, dtype=torch.float64), beta=beta), x)
    x = pc.clone().requires_grad_(True)
    simpo = losses.simpo_loss(x / 3, pr / 5, beta=beta, gamma=beta / 2)
    ours = torch.tensor([v[0] for v in js["simpo"]], dtype=torch.float64)
    assert float((ours - simpo.detach()).abs().max()) < 1e-12
    (grad,) = torch.autograd.grad(simpo.sum(), x)  # d/dx = dL/dz * beta / 3
    slope = torch.tensor([v[1] for v in js["simpo"]], dtype=torch.float64) * beta / 3
    assert float((slope - grad).abs().max()) < 1e-12
    x = pc.clone().requires_grad_(True)
    check("bradley-terry", js["bt"], losses.bradley_terry_loss(x, pr), x)


def test_bad_settings_are_refused_by_name(core_page):
    message = core_page.evaluate(
        "d => { try { DPOPlayground.makeConfig({beta: -1}, d); return ''; } catch (e) { return e.message; } }",
        pg.PlaygroundConfig().to_dict(),
    )
    assert message.startswith("beta must be a positive number")


def test_training_in_the_page_ends_where_the_twin_ends(browser, site):
    """What the page shows after 500 steps is the Python twin's policy. Whether the main thread stalls while it
    trains is a matter of time, so it is measured, not asserted: the site benchmark counts the long tasks
    (benchmarks/site.py, on the performance page)."""
    page = open_page(browser, site, "/playground/")
    start_widget(page, "playground")
    before = widget_state(page, "playground")
    assert before["step"] == 0 and "Step 0 of 500" in before["status"]
    page.select_option("#playground-speed", "20")
    train_to_end(page, "playground")
    after = widget_state(page, "playground")
    assert after["step"] == 500 and "Step 500 of 500" in after["status"]
    (run,) = pg.train(pg.PlaygroundConfig())
    shown = torch.tensor(after["runs"][0]["probs"], dtype=torch.float64)
    assert float((shown - run.logps.exp()).abs().max()) < 1e-9  # what the bars show is the twin's policy
    assert all(n > 0 for n in after["traces"])  # every chart drawn
    assert not page.errors
    # Play at the end starts again from pi_ref
    page.click('#playground [data-action="play"]')
    page.wait_for_function("() => window.dpoPlayground.widgets.playground.last.step < 500")
    page.context.close()


def test_the_worker_reports_the_time_of_its_updates(core_page):
    """The Worker trains 1,000 updates of the default configuration in one answer and says how long
    they took (printed: a speed goal is measured, not asserted, in a test)."""
    answer = core_page.evaluate(
        """d => new Promise(resolve => {
             const worker = new Worker(new URL('../assets/javascripts/playground-worker.js', location.href));
             worker.onmessage = e => { if (e.data.ms !== undefined) { resolve(e.data); worker.terminate(); }
                                       else worker.postMessage({cmd: 'run', steps: 1000, id: 1}); };
             worker.postMessage({cmd: 'reset', config: Object.assign({}, d, {steps: 1000}), id: 1}); })""",
        pg.PlaygroundConfig().to_dict(),
    )
    assert answer["snapshot"]["step"] == 1000 and answer["ms"] > 0
    (run,) = pg.train(pg.PlaygroundConfig(steps=1000))
    assert abs(answer["snapshot"]["runs"][0]["loss"] - run.losses[-1]) < 1e-9
    print(f"1,000 updates of the default configuration in the Worker: {answer['ms']:.0f} ms")


def test_nothing_is_fetched_until_the_reader_comes_and_train_then_trains(browser, site):
    page = open_page(browser, site, "/playground/")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 100)))")
    loaded = page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
    assert not any("playground" in url or "plotly" in url for url in loaded)  # the page appears first
    page.click('#playground [data-action="play"]')  # pressed before the trainer arrived
    page.wait_for_function(
        "() => { const w = window.dpoPlayground && window.dpoPlayground.widgets.playground;"
        " return w && w.finished() && !w.playing; }",
        timeout=60_000,
    )
    assert not page.errors
    page.context.close()


def test_presets_set_the_controls_and_the_address(browser, site):
    page = open_page(browser, site, "/playground/")
    start_widget(page, "playground")
    page.click('[data-preset="deterministic-labels"]')
    page.wait_for_function("() => window.dpoPlayground.widgets.playground.playing")
    assert page.input_value("#playground-compare") == json.dumps("ipo")
    assert page.input_value("#playground-labels") == json.dumps("deterministic")
    assert "labels=deterministic" in page.evaluate("location.hash")
    assert page.get_attribute('[data-preset="deterministic-labels"]', "aria-pressed") == "true"
    link = page.locator("#playground .dpo-playground__claim a")
    assert link.get_attribute("href").endswith("/bigger-picture/")
    # the address reproduces a run: a fresh page with it shows the same settings
    shared = page.evaluate("location.hash")
    page.context.close()
    again = open_page(browser, site, "/playground/", hash_=shared)
    start_widget(again, "playground")
    state = widget_state(again, "playground")
    assert state["config"]["compare"] == "ipo" and state["config"]["compare_lr"] == 0.5
    assert again.input_value("#playground-steps") == "1000"
    again.context.close()


def test_a_bad_address_is_named_and_the_defaults_used(browser, site):
    page = open_page(browser, site, "/playground/", hash_="#beta=-2")
    start_widget(page, "playground")
    state = widget_state(page, "playground")
    assert "beta must be a positive number" in state["status"]
    assert state["config"]["beta"] == pg.PlaygroundConfig().beta
    page.context.close()


@pytest.mark.parametrize(("path", "widget_id"), list(EMBEDDED.items()))
@pytest.mark.parametrize(("width", "scheme"), [(1280, "light"), (1280, "dark"), (390, "light"), (390, "dark")])
def test_each_embedded_playground_trains_and_fits(browser, site, path, widget_id, width, scheme):
    page = open_page(browser, site, path, width=width, scheme=scheme)
    start_widget(page, widget_id)
    config = pg.preset_config(json.loads(page.get_attribute(f"#{widget_id}", "data-playground"))["start"]["preset"])
    page.select_option(f"#{widget_id} [data-speed]", "50")
    train_to_end(page, widget_id)
    state = widget_state(page, widget_id)
    assert state["step"] == config.steps and f"Step {config.steps} of {config.steps}" in state["status"]
    assert all(n > 0 for n in state["traces"])
    python = pg.train(config)
    for shown, run in zip(state["runs"], python):
        assert abs(shown["loss"] - run.losses[-1]) < 1e-9
    box = page.evaluate(
        """id => { const el = document.getElementById(id); const r = el.getBoundingClientRect();
                   return {right: r.right, scroll: el.scrollWidth - el.clientWidth, width: window.innerWidth}; }""",
        widget_id,
    )
    assert box["right"] <= box["width"] and box["scroll"] <= 1  # nothing cut off at this width
    # changing a control starts a new run from pi_ref
    control = page.locator(f"#{widget_id} select[data-field]").first
    options = control.locator("option").evaluate_all("os => os.map(o => o.value)")
    control.select_option(next(v for v in options if v != control.input_value()))
    page.wait_for_function("id => window.dpoPlayground.widgets[id].last.step === 0", arg=widget_id)
    assert not page.errors
    page.context.close()
