"""The HTML template of the validation report (Jinja2, autoescaped; one self-contained page, no scripts)."""

# ruff: noqa: E501 -- the template's lines are HTML, kept whole for readability

from __future__ import annotations

__all__ = ["TEMPLATE"]

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ r.title }}</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 62rem; margin: 2rem auto;
         padding: 0 1rem; color: #222; line-height: 1.45; }
  h1 { font-size: 1.6rem; margin-bottom: .2rem; }
  h2 { font-size: 1.2rem; color: #1f4e79; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem;
       margin-top: 2rem; }
  table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
  th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; text-align: left; vertical-align: top; }
  th { background: #f3f6f9; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .synthetic { background: #b00020; color: white; font-weight: bold; padding: .5rem 1rem; font-size: 1.1rem; }
  .note { color: #555; font-size: .9rem; }
  .flag { color: #b00020; font-weight: bold; }
  .pass { color: #1e7b34; font-weight: bold; }
  .fail { color: #b00020; font-weight: bold; }
  .insufficient { color: #888; }
  .rec { font-size: 1.3rem; font-weight: bold; padding: .4rem .8rem; display: inline-block; border-radius: 4px; }
  .rec-go { background: #d4edda; } .rec-extend { background: #fff3cd; } .rec-stop { background: #f8d7da; }
  img { max-width: 100%; }
  code, .uid { font-family: ui-monospace, monospace; font-size: .85rem; }
  details { margin: .4rem 0; }
</style>
</head>
<body>
{% if r.synthetic %}<p class="synthetic">{{ synthetic_notice }}</p>{% endif %}
<h1>{{ r.title }}</h1>
<p class="note">{{ not_a_device }} Generated {{ r.generated_at }}.</p>
{% set v = r.validation %}
{% macro pct(x) %}{% if x is none %}n/a{% else %}{{ "%.1f"|format(100 * x) }}%{% endif %}{% endmacro %}
{% macro num(x, f="%.3f") %}{% if x is none %}n/a{% else %}{{ f|format(x) }}{% endif %}{% endmacro %}
{% macro ci(c, f="%.3f") %}{% if c is none %}n/a{% else %}{{ f|format(c[0]) }}–{{ f|format(c[1]) }}{% endif %}{% endmacro %}

<h2 id="intended-use">Intended use, model and site</h2>
<table>
<tr><th>Intended use</th><td>{{ r.context.intended_use or "not stated" }}</td></tr>
<tr><th>Deployment</th><td>{{ r.context.deployment or "not stated" }}</td></tr>
<tr><th>Model</th><td>{{ r.context.model_name or "not stated" }}</td></tr>
<tr><th>Model version</th><td>{{ r.context.model_version or "not stated" }}</td></tr>
<tr><th>Model SHA-256</th><td><code>{{ r.context.model_sha256 or "not known" }}</code></td></tr>
<tr><th>Site</th><td>{{ r.context.site or "not stated" }}</td></tr>
<tr><th>Dates</th><td>data {{ r.context.data_period or "period not stated" }}; report {{ r.generated_at }}
  {% if r.trial %}; silent trial <b>{{ r.trial.name }}</b> started {{ r.trial.started_at }}{% endif %}</td></tr>
<tr><th>Sampling</th><td>{{ r.context.sampling or "not stated" }}</td></tr>
<tr><th>Reference standard</th><td>{{ r.context.reference_standard or "not stated" }}</td></tr>
</table>

<h2 id="case-flow">Case flow</h2>
<table>
<tr><th>Received</th><td class="num">{{ r.case_flow.received }}</td></tr>
{% for reason, count in r.case_flow.excluded.items() %}
<tr><th>Not analysed: {{ reason }}</th><td class="num">{{ count }}</td></tr>
{% endfor %}
<tr><th>Analysed</th><td class="num">{{ r.case_flow.analysed }} ({{ v.n_positive }} positive, {{ v.n_negative }} negative)</td></tr>
</table>

<h2 id="roc">Discrimination (ROC)</h2>
<p>AUC <b>{{ num(v.auc) }}</b>, 95% CI {{ ci(v.auc_ci) }} (DeLong); stratified bootstrap ({{ r.bootstrap_resamples }}
resamples) {{ ci(r.bootstrap_auc_ci) }}.</p>
<img alt="ROC curve" src="data:image/png;base64,{{ images.roc }}">

<h2 id="two-by-two">2×2 table at threshold {{ v.threshold }}</h2>
<p class="note">A case is called positive when score ≥ {{ v.threshold }} ({{ "given" if v.threshold_source == "given" else "default threshold" }}).</p>
<table>
<tr><th></th><th>Reference positive</th><th>Reference negative</th></tr>
<tr><th>Called positive</th><td class="num">TP {{ v.confusion.tp }}</td><td class="num">FP {{ v.confusion.fp }}</td></tr>
<tr><th>Called negative</th><td class="num">FN {{ v.confusion.fn }}</td><td class="num">TN {{ v.confusion.tn }}</td></tr>
</table>

<h2 id="accuracy">Sensitivity, specificity, PPV and NPV at the local prevalence</h2>
<table>
<tr><th>Measure</th><th>Estimate</th><th>95% CI</th><th>Method</th></tr>
<tr><td>Sensitivity</td><td class="num">{{ pct(v.sensitivity) }}</td><td class="num">{{ ci(v.sensitivity_ci) }}</td><td>Wilson</td></tr>
<tr><td>Specificity</td><td class="num">{{ pct(v.specificity) }}</td><td class="num">{{ ci(v.specificity_ci) }}</td><td>Wilson</td></tr>
<tr><td>PPV at prevalence {{ "%.4g"|format(v.prevalence) }} ({{ v.prevalence_source }})</td><td class="num">{{ pct(v.ppv) }}</td><td class="num">{{ ci(v.ppv_ci) }}</td><td>{{ v.predictive_ci_method }} (Mercaldo 2007)</td></tr>
<tr><td>NPV at prevalence {{ "%.4g"|format(v.prevalence) }}</td><td class="num">{{ pct(v.npv) }}</td><td class="num">{{ ci(v.npv_ci) }}</td><td>{{ v.predictive_ci_method }}</td></tr>
<tr><td>False positives per true positive</td><td class="num">{{ num(v.fp_per_tp, "%.2f") }}</td><td></td><td>(1 − Sp)(1 − π) / (Se π)</td></tr>
</table>
{% if r.burden %}
<p>At {{ r.burden.volume_per_day }} studies per day: {{ "%.2f"|format(r.burden.tp_per_day) }} true positives,
{{ "%.2f"|format(r.burden.fp_per_day) }} false positives and {{ "%.2f"|format(r.burden.fn_per_day) }} missed cases per day.
{% if r.burden.warning %}<span class="flag">{{ r.burden.warning }}</span>{% endif %}</p>
{% endif %}
<p class="note">Alternative thresholds, chosen on these same cases (optimistic):</p>
<table>
<tr><th>Criterion</th><th>Threshold</th><th>Sensitivity (95% CI)</th><th>Specificity (95% CI)</th></tr>
{% for a in r.alternative_thresholds %}
<tr><td>{{ a.criterion }}</td><td class="num">{{ "%.4g"|format(a.threshold) }}</td>
<td class="num">{{ pct(a.sensitivity) }} ({{ ci(a.sensitivity_ci) }})</td><td class="num">{{ pct(a.specificity) }} ({{ ci(a.specificity_ci) }})</td></tr>
{% endfor %}
</table>
{% for w in v.warnings %}<p class="flag">{{ w }}</p>{% endfor %}

<h2 id="calibration">Calibration</h2>
<p class="note">ECE binning: {{ r.calibration.binning }}. Recalibration fitted by {{ r.calibration.folds }}-fold
stratified cross-validation on the local labels; "after" figures are out-of-fold.</p>
<table>
<tr><th></th><th>Brier</th><th>ECE</th><th>Intercept (95% CI)</th><th>Slope (95% CI)</th></tr>
{% for row in r.calibration.rows %}
<tr><td>{{ row.name }}</td><td class="num">{{ num(row.brier, "%.4f") }}</td><td class="num">{{ num(row.ece, "%.4f") }}</td>
<td class="num">{{ num(row.intercept, "%.2f") }} ({{ ci(row.intercept_ci, "%.2f") }})</td>
<td class="num">{{ num(row.slope, "%.2f") }} ({{ ci(row.slope_ci, "%.2f") }})</td></tr>
{% endfor %}
</table>
{% for n in r.calibration.notes %}<p class="note">{{ n }}</p>{% endfor %}
{% if images.get('calibration') %}<img alt="Reliability diagram" src="data:image/png;base64,{{ images.calibration }}">{% endif %}

<h2 id="subgroups">Subgroups</h2>
{% if v.subgroups %}
<p class="note">Levels with fewer than 100 positive or 100 negative cases are marked insufficient: not validated.</p>
<table>
<tr><th>Subgroup</th><th>n (+/−)</th><th>AUC (95% CI)</th><th>Sensitivity (95% CI)</th><th>Specificity (95% CI)</th><th>AUC gap to overall (95% CI)</th><th></th></tr>
{% for column, levels in v.subgroups.items() %}{% for level, s in levels.items() %}
<tr class="{{ 'insufficient' if s.insufficient else '' }}"><td>{{ column }} = {{ level or "(missing)" }}</td>
<td class="num">{{ s.n }} ({{ s.n_positive }}/{{ s.n_negative }})</td>
<td class="num">{{ num(s.auc) }} ({{ ci(s.auc_ci) }})</td>
<td class="num">{{ pct(s.sensitivity) }} ({{ ci(s.sensitivity_ci) }})</td>
<td class="num">{{ pct(s.specificity) }} ({{ ci(s.specificity_ci) }})</td>
<td class="num">{{ num(s.auc_gap, "%+.3f") }} ({{ ci(s.auc_gap_ci, "%+.3f") }})</td>
<td>{% if s.insufficient %}insufficient data{% endif %}</td></tr>
{% endfor %}{% endfor %}
</table>
{% if images.get('forest') %}<img alt="Subgroup forest plot" src="data:image/png;base64,{{ images.forest }}">{% endif %}
{% else %}<p class="note">No subgroup columns were given.</p>{% endif %}

<h2 id="confounders">Confounder check</h2>
{% for c in r.confounders %}
<h3>{{ c.column }}</h3>
<p>{{ c.note }}. Metadata-only AUC {{ num(c.metadata_auc) }} ({{ ci(c.metadata_auc_ci) }}); χ² {{ "%.2f"|format(c.chi2) }}
on {{ c.dof }} df, p {{ "%.3g"|format(c.p) }}; Cramér's V {{ "%.3f"|format(c.cramers_v) }}.
Overall AUC {{ num(c.overall_auc) }}; pooled within-{{ c.column }} AUC {{ num(c.pooled_within_auc) }}
({{ ci(c.pooled_within_ci) }}), over {{ pct(c.pairs_within_fraction) }} of positive–negative pairs.</p>
<table><tr><th>{{ c.column }}</th><th>positives</th><th>negatives</th><th>prevalence</th><th>model AUC (95% CI)</th></tr>
{% for st in c.strata %}<tr><td>{{ st.level or "(missing)" }}</td><td class="num">{{ st.n_positive }}</td><td class="num">{{ st.n_negative }}</td>
<td class="num">{{ pct(st.prevalence) }}</td><td class="num">{{ num(st.auc) }} ({{ ci(st.auc_ci) }}){% if st.note %} <span class="note">{{ st.note }}</span>{% endif %}</td></tr>{% endfor %}
</table>
{% else %}<p class="note">No metadata columns were given for the confounder check.</p>{% endfor %}

{% if r.explanation_check %}{% set e = r.explanation_check %}
<h2 id="explanations">Explanation check</h2>
<p>Of {{ e.n }} true positives with a map and a known region, {{ e.inside }} peak inside the labelled region
{% if e.share is not none %}({{ "%.2f"|format(e.share) }}, Wilson 95% CI {{ "%.2f"|format(e.ci[0]) }}–{{ "%.2f"|format(e.ci[1]) }}){% endif %}.</p>
<p class="note">{{ e.note }}</p>
{% endif %}

<h2 id="errors">False negatives and false positives</h2>
{% for title, key in (("False negatives", "false_negatives"), ("False positives", "false_positives")) %}
<details><summary>{{ title }}: {{ r[key]|length }} (highest score first; also in {{ key|replace("_", "-") }}.csv)</summary>
<p class="uid">{% for uid in r[key] %}{{ uid }}<br>{% endfor %}</p></details>
{% endfor %}

<h2 id="criteria">Acceptance criteria</h2>
{% if r.criteria %}
{% set rec = r.criteria.recommendation %}
<p class="rec {{ 'rec-go' if rec == 'go live' else ('rec-extend' if rec == 'extend the trial' else 'rec-stop') }}">Recommendation: {{ rec }}</p>
{% for f in r.flags %}<p class="flag">{{ f }}</p>{% endfor %}
<ul>{% for reason in r.criteria.reasons %}<li>{{ reason }}</li>{% endfor %}</ul>
<table><tr><th>Criterion</th><th>Subgroup</th><th>Outcome</th><th>Observed</th><th>95% CI</th><th>Detail</th></tr>
{% for c in r.criteria.criteria %}<tr><td>{{ c.requirement }}</td><td>{{ c.subgroup or "" }}</td>
<td class="{{ 'pass' if c.outcome == 'pass' else ('fail' if c.outcome == 'fail' else '') }}">{{ c.outcome }}{% if c.decisive %} (decisive){% endif %}</td>
<td class="num">{{ num(c.observed) }}</td><td class="num">{{ ci(c.ci) }}</td><td>{{ c.detail }}</td></tr>{% endfor %}
</table>
{% else %}<p class="note">No acceptance criteria were evaluated (give --criteria FILE or --trial NAME).</p>{% endif %}

<h2 id="limitations">Limitations</h2>
<ul>{% for item in r.limitations %}<li>{{ item }}</li>{% endfor %}</ul>

<h2 id="software">Software versions</h2>
<table>{% for k, val in r.software.items() %}<tr><th>{{ k }}</th><td>{{ val }}</td></tr>{% endfor %}</table>
<p class="note">Methods: {% for k, m in v.methods.items() %}{{ k }}: {{ m }}. {% endfor %}</p>
{% if r.synthetic %}<p class="synthetic">{{ synthetic_notice }}</p>{% endif %}
</body>
</html>
"""
