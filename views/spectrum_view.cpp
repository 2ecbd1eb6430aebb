#include "views/spectrum_view.h"

#include <qcustomplot.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "sessions/analysis/analysis.h"
#include "views/chart_style.h"

namespace kvwb::views {

namespace {

constexpr int kAllTensors = 3;

QVector<double> positive_or_nan(const std::vector<double>& v) {
  QVector<double> out;
  out.reserve(static_cast<int>(v.size()));
  for (double x : v) out.push_back(x > 0 ? x : std::nan(""));
  return out;
}

QVector<double> qvec(const std::vector<double>& v) { return QVector<double>(v.begin(), v.end()); }

}  // namespace

SpectrumView::SpectrumView(QWidget* parent)
    : ModelChartView(QStringLiteral("spectrum"), QStringLiteral("Spectrum"), parent) {
  layer_ = add_combo("Layer", "layer");
  head_ = add_combo("KV head", "kv_head");
  tensor_ = add_combo("Tensor", "tensor");
  tensor_->addItems({"K pre-RoPE", "K whitened (K·L)", "V", "All three"});
  controls()->addStretch(1);
  connect(layer_, &QComboBox::activated, this, [this](int) {
    want_layer_ = layer_->currentData().toInt();
    rebuild();
    emit select_requested(want_layer_, want_head_);
  });
  connect(head_, &QComboBox::activated, this, [this](int) {
    want_head_ = head_->currentData().toInt();
    rebuild();
    emit select_requested(want_layer_, want_head_);
  });
  connect(tensor_, &QComboBox::currentIndexChanged, this, [this](int) { rebuild(); });
  set_snapshot(std::make_shared<const Snapshot>());
}

void SpectrumView::snapshot_changed() {
  want_layer_ = snapshot_->selection.layer;
  want_head_ = std::max(0, snapshot_->selection.kv_head);
  rebuild();
}

std::vector<SpectrumTensor> SpectrumView::requested_tensors() const {
  switch (tensor_->currentIndex()) {
    case 1:
      return {SpectrumTensor::kWhitened};
    case 2:
      return {SpectrumTensor::kV};
    case kAllTensors:
      return {SpectrumTensor::kPreRope, SpectrumTensor::kWhitened, SpectrumTensor::kV};
    default:
      return {SpectrumTensor::kPreRope};
  }
}

void SpectrumView::rebuild() {
  model_ = build_spectrum_model(*snapshot_, want_layer_, want_head_, requested_tensors());
  baseline_ = SpectrumModel{};
  if (const auto& b = snapshot_->baseline; b && !model_.empty()) {
    SpectrumModel bm = build_spectrum_model(*snapshot_, b->selection.layer,
                                            std::max(0, b->selection.kv_head), requested_tensors());
    if (bm.layer != model_.layer || bm.kv_head != model_.kv_head) baseline_ = std::move(bm);
  }
  fill_selectors();
  draw();
}

void SpectrumView::fill_selectors() {
  fill_numbers(layer_, model_.layers, model_.layer);
  std::vector<int> heads(static_cast<size_t>(std::max(0, model_.kv_heads)));
  std::iota(heads.begin(), heads.end(), 0);
  fill_numbers(head_, heads, model_.kv_head);
  head_->setEnabled(model_.kv_heads > 0 && !model_.layers.empty());
}

void SpectrumView::draw() {
  QString note = QString::fromStdString(model_.note);
  if (snapshot_->baseline && !model_.empty()) {
    note +=
        (note.isEmpty() ? "" : " ") +
        (baseline_.empty()
             ? QStringLiteral("Baseline #%1 was pinned on this (layer, head): the capture's "
                              "spectra do not depend on the configuration, so there is "
                              "nothing to overlay.")
                   .arg(snapshot_->baseline->id)
             : QStringLiteral("Dashed: the baseline's (layer %1, head %2), pinned with run #%3.")
                   .arg(baseline_.layer)
                   .arg(baseline_.kv_head)
                   .arg(snapshot_->baseline->id));
  }
  QCustomPlot* p = begin_draw(model_.title, note, "principal component k (1 = largest variance)",
                              "eigenvalue λ_k (variance, squared tensor units)");
  style_axis(p->yAxis2, "cumulative explained variance (fraction)");
  if (model_.empty()) {
    end_empty_draw();
    return;
  }
  set_log_axis(p->yAxis);
  p->legend->setVisible(true);
  p->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignRight | Qt::AlignVCenter);
  const bool single = model_.curves.size() == 1;
  double ymax = 0, ymin = 0;
  size_t dim = 0;
  int ci = 0;
  static const Qt::PenStyle kRatioStyles[] = {Qt::DotLine, Qt::DashLine, Qt::DashDotLine};
  for (const SpectrumCurve& c : model_.curves) {
    const QString name = QString::fromStdString(spectrum_tensor_name(c.tensor));
    const QColor eig_color = chart_color(single ? 0 : ci);
    const QColor cum_color = single ? chart_color(1) : chart_color(ci);
    dim = std::max(dim, c.eigenvalues.size());
    QVector<double> xs;
    for (size_t k = 0; k < c.eigenvalues.size(); ++k) xs.push_back(static_cast<double>(k + 1));
    QCPGraph* eig = p->addGraph(p->xAxis, p->yAxis);
    eig->setName(name + " λ_k");
    eig->setData(xs, positive_or_nan(c.eigenvalues), true);
    eig->setPen(QPen(eig_color, 1.8));
    eig->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, eig_color, Qt::white, 4));
    for (double v : c.eigenvalues) {
      if (v <= 0) continue;
      ymax = std::max(ymax, v);
      ymin = ymin == 0 ? v : std::min(ymin, v);
    }
    QCPGraph* cum = p->addGraph(p->xAxis, p->yAxis2);
    cum->setName(name + " cumulative");
    cum->setData(xs, qvec(c.cumulative), true);
    cum->setPen(QPen(cum_color, 1.6, Qt::DashLine));
    // d_eff: dots on the cumulative curve, vertical lines with labels.
    for (size_t r = 0; r < sessions::kSpectrumRatios.size(); ++r) {
      const double ratio = sessions::kSpectrumRatios[r];
      const double d = static_cast<double>(c.d_eff[r]);
      QCPGraph* dot = p->addGraph(p->xAxis, p->yAxis2);
      dot->setName(QStringLiteral("%1 d_eff(%2)").arg(name).arg(ratio, 0, 'f', 2));
      dot->setData(QVector<double>{d}, QVector<double>{ratio});
      dot->setLineStyle(QCPGraph::lsNone);
      dot->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDiamond, cum_color, cum_color, 8));
      dot->removeFromLegend();
      if (!single && r != 1) continue;  // all three: only the 0.95 line per tensor
      auto* line = new QCPItemStraightLine(p);
      line->point1->setCoords(d, 0);
      line->point2->setCoords(d, 1);
      line->setPen(QPen(single ? QColor(90, 90, 90) : eig_color, 1.2,
                        single ? kRatioStyles[r] : Qt::DotLine));
      auto* text = new QCPItemText(p);
      text->setClipToAxisRect(true);
      text->position->setTypeX(QCPItemPosition::ptPlotCoords);
      text->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
      const double row = single ? static_cast<double>(r) : static_cast<double>(ci);  // 0..2
      text->position->setCoords(d, 0.97 - 0.065 * (2.0 - row));
      text->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
      text->setPadding(QMargins(3, 1, 3, 1));
      text->setBrush(QColor(255, 255, 255, 210));
      text->setColor(single ? QColor(60, 60, 60) : eig_color);
      text->setText(single ? QStringLiteral("d_eff(%1) = %2").arg(ratio, 0, 'f', 2).arg(c.d_eff[r])
                           : QStringLiteral("%1 d_eff(0.95) = %2").arg(name).arg(c.d_eff[r]));
    }
    ++ci;
  }
  // The baseline's (layer, head): its eigenvalues dashed, for comparison with the shown ones.
  for (const SpectrumCurve& c : baseline_.curves) {
    QVector<double> xs;
    for (size_t k = 0; k < c.eigenvalues.size(); ++k) xs.push_back(static_cast<double>(k + 1));
    QCPGraph* g = p->addGraph(p->xAxis, p->yAxis);
    g->setName(QStringLiteral("baseline #%1 (layer %2, head %3) %4 λ_k")
                   .arg(snapshot_->baseline->id)
                   .arg(baseline_.layer)
                   .arg(baseline_.kv_head)
                   .arg(QString::fromStdString(spectrum_tensor_name(c.tensor))));
    g->setData(xs, positive_or_nan(c.eigenvalues), true);
    g->setPen(QPen(QColor(110, 110, 110), 1.5, Qt::DashLine));
    for (double v : c.eigenvalues)
      if (v > 0) {
        ymax = std::max(ymax, v);
        ymin = ymin == 0 ? v : std::min(ymin, v);
      }
  }
  p->xAxis->setRange(0, static_cast<double>(dim) + 1);
  if (ymax > 0) set_log_range(p->yAxis, std::max(ymin, ymax * 1e-9), ymax, 1.5);
  p->yAxis2->setVisible(true);
  p->yAxis2->setRange(0, 1.05);
  p->yAxis2->grid()->setVisible(false);
  end_draw();
}

}  // namespace kvwb::views
