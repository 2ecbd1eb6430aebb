#include "views/imgui_host.h"

#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>

#include <QFileInfo>
#include <QKeyEvent>
#include <QMouseEvent>
#include <QOpenGLContext>
#include <QOpenGLFunctions>
#include <QWheelEvent>
#include <algorithm>
#include <array>
#include <cfloat>
#include <utility>

namespace kvwb::views {

namespace {

/// Qt key of each ImGuiKey_ (KeyMap index = ImGuiKey_ value; KeysDown[index] holds its state).
constexpr std::array<std::pair<int, int>, 22> kKeyTable = {{
    {ImGuiKey_Tab, Qt::Key_Tab},
    {ImGuiKey_LeftArrow, Qt::Key_Left},
    {ImGuiKey_RightArrow, Qt::Key_Right},
    {ImGuiKey_UpArrow, Qt::Key_Up},
    {ImGuiKey_DownArrow, Qt::Key_Down},
    {ImGuiKey_PageUp, Qt::Key_PageUp},
    {ImGuiKey_PageDown, Qt::Key_PageDown},
    {ImGuiKey_Home, Qt::Key_Home},
    {ImGuiKey_End, Qt::Key_End},
    {ImGuiKey_Insert, Qt::Key_Insert},
    {ImGuiKey_Delete, Qt::Key_Delete},
    {ImGuiKey_Backspace, Qt::Key_Backspace},
    {ImGuiKey_Space, Qt::Key_Space},
    {ImGuiKey_Enter, Qt::Key_Return},
    {ImGuiKey_Escape, Qt::Key_Escape},
    {ImGuiKey_KeyPadEnter, Qt::Key_Enter},
    {ImGuiKey_A, Qt::Key_A},
    {ImGuiKey_C, Qt::Key_C},
    {ImGuiKey_V, Qt::Key_V},
    {ImGuiKey_X, Qt::Key_X},
    {ImGuiKey_Y, Qt::Key_Y},
    {ImGuiKey_Z, Qt::Key_Z},
}};

/// Glyphs the views use: Latin-1, Greek (Σ, κ, π), punctuation (…, —, ‖), arrows, math (≥, √).
const ImWchar kGlyphRanges[] = {0x0020, 0x00FF, 0x0370, 0x03FF, 0x2000, 0x206F,
                                0x2190, 0x21FF, 0x2200, 0x22FF, 0};

constexpr float kFontPixels = 16.0f;
constexpr float kHeadingPixels = 19.0f;
constexpr int kHoverTickMs = 120;
constexpr int kHoverTicks = 12;

}  // namespace

ImGuiHost::ImGuiHost(QWidget* parent) : QOpenGLWidget(parent) {
  ImGuiContext* previous = ImGui::GetCurrentContext();
  ctx_ = ImGui::CreateContext();
  ImGui::SetCurrentContext(ctx_);
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;  // no imgui.ini next to the working directory
  io.LogFilename = nullptr;
  for (const auto& [imgui_key, qt_key] : kKeyTable) io.KeyMap[imgui_key] = imgui_key;
  // A TrueType font when the system has DejaVu Sans (sharp at this size), else ImGui's own font.
  const char* dirs[] = {"/usr/share/fonts/truetype/dejavu/", "/usr/share/fonts/TTF/",
                        "/usr/share/fonts/dejavu/"};
  bool loaded = false;
  for (const char* dir : dirs) {
    const QString regular = QString::fromUtf8(dir) + QStringLiteral("DejaVuSans.ttf");
    const QString bold = QString::fromUtf8(dir) + QStringLiteral("DejaVuSans-Bold.ttf");
    if (!QFileInfo::exists(regular)) continue;
    // The first font added is the default one.
    if (io.Fonts->AddFontFromFileTTF(regular.toUtf8().constData(), kFontPixels, nullptr,
                                     kGlyphRanges) == nullptr) {
      continue;
    }
    loaded = true;
    if (QFileInfo::exists(bold)) {
      heading_font_ = io.Fonts->AddFontFromFileTTF(bold.toUtf8().constData(), kHeadingPixels,
                                                   nullptr, kGlyphRanges);
    }
    break;
  }
  if (!loaded) {
    ImFontConfig cfg;
    cfg.SizePixels = 13.0f;
    io.Fonts->AddFontDefault(&cfg);
    io.FontGlobalScale = 1.25f;
  }
  ImGui::StyleColorsLight();
  ImGuiStyle& style = ImGui::GetStyle();
  style.WindowRounding = 0.0f;
  style.WindowBorderSize = 0.0f;
  style.FrameRounding = 2.0f;
  style.WindowPadding = ImVec2(10, 8);
  ImGui::SetCurrentContext(previous);

  setMouseTracking(true);
  setFocusPolicy(Qt::StrongFocus);
  setMinimumSize(320, 200);
  clock_.start();
  hover_timer_.setInterval(kHoverTickMs);
  connect(&hover_timer_, &QTimer::timeout, this, [this] {
    if (--hover_ticks_left_ <= 0) hover_timer_.stop();
    update();
  });
}

ImGuiHost::~ImGuiHost() {
  release_gl();
  // QOpenGLWidget's destructor destroys the GL context after this one ran: do not be called then.
  if (context() != nullptr) disconnect(context(), nullptr, this, nullptr);
  ImGui::DestroyContext(ctx_);
}

void ImGuiHost::release_gl() {
  if (!gl_ready_) return;
  makeCurrent();
  make_imgui_current();
  ImGui_ImplOpenGL3_Shutdown();
  doneCurrent();
  gl_ready_ = false;
}

void ImGuiHost::make_imgui_current() const { ImGui::SetCurrentContext(ctx_); }

void ImGuiHost::request_frame() { update(); }

void ImGuiHost::poke() {
  hover_ticks_left_ = kHoverTicks;
  if (underMouse() && !hover_timer_.isActive()) hover_timer_.start();
  update();
}

void ImGuiHost::initializeGL() {
  if (gl_ready_) return;
  make_imgui_current();
  // "#version 130" (GLSL 1.30) works on GL 3.0+ compatibility contexts, including Mesa llvmpipe
  // under Xvfb; the backend picks its shaders from this string.
  ImGui_ImplOpenGL3_Init("#version 130");
  gl_ready_ = true;
  // The GL context can be destroyed before this widget (reparenting, window close): release the
  // backend's GL objects while it is still alive; initializeGL runs again on a new context.
  connect(context(), &QOpenGLContext::aboutToBeDestroyed, this, &ImGuiHost::release_gl,
          Qt::UniqueConnection);
}

void ImGuiHost::resizeGL(int, int) { update(); }

void ImGuiHost::update_io_frame_state() {
  ImGuiIO& io = ImGui::GetIO();
  io.DisplaySize = ImVec2(static_cast<float>(width()), static_cast<float>(height()));
  const float dpr = static_cast<float>(devicePixelRatioF());
  io.DisplayFramebufferScale = ImVec2(dpr, dpr);
  const qint64 now = clock_.nsecsElapsed();
  io.DeltaTime = std::max(1e-4f, static_cast<float>(now - last_ns_) * 1e-9f);
  last_ns_ = now;
}

void ImGuiHost::paintGL() {
  make_imgui_current();
  update_io_frame_state();
  ImGui_ImplOpenGL3_NewFrame();  // builds the font texture on the first frame
  ImGui::NewFrame();
  draw_frame();
  ImGui::Render();
  fonts_built_ = true;
  ++frames_;
  const ImGuiIO& io = ImGui::GetIO();
  const ImVec4 bg = ImGui::GetStyle().Colors[ImGuiCol_WindowBg];
  QOpenGLFunctions* gl = context()->functions();
  gl->glViewport(0, 0, static_cast<GLsizei>(io.DisplaySize.x * io.DisplayFramebufferScale.x),
                 static_cast<GLsizei>(io.DisplaySize.y * io.DisplayFramebufferScale.y));
  gl->glClearColor(bg.x, bg.y, bg.z, 1.0f);
  gl->glClear(GL_COLOR_BUFFER_BIT);
  ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
  after_frame();
}

void ImGuiHost::run_input_frame() {
  if (!fonts_built_) return;  // before the first paint: the state is picked up by that paint
  make_imgui_current();
  update_io_frame_state();
  ImGui::NewFrame();
  draw_frame();
  ImGui::EndFrame();
  ++frames_;
  after_frame();
}

void ImGuiHost::set_mouse_button(Qt::MouseButton b, bool down) {
  int index = -1;
  if (b == Qt::LeftButton) index = 0;
  if (b == Qt::RightButton) index = 1;
  if (b == Qt::MiddleButton) index = 2;
  if (index < 0) return;
  make_imgui_current();
  ImGui::GetIO().MouseDown[index] = down;
}

void ImGuiHost::set_modifiers(Qt::KeyboardModifiers m) {
  make_imgui_current();
  ImGuiIO& io = ImGui::GetIO();
  io.KeyCtrl = m.testFlag(Qt::ControlModifier);
  io.KeyShift = m.testFlag(Qt::ShiftModifier);
  io.KeyAlt = m.testFlag(Qt::AltModifier);
  io.KeySuper = m.testFlag(Qt::MetaModifier);
}

void ImGuiHost::mousePressEvent(QMouseEvent* e) {
  make_imgui_current();
  ImGui::GetIO().MousePos =
      ImVec2(static_cast<float>(e->position().x()), static_cast<float>(e->position().y()));
  set_modifiers(e->modifiers());
  set_mouse_button(e->button(), true);
  run_input_frame();
  poke();
  e->accept();
}

void ImGuiHost::mouseReleaseEvent(QMouseEvent* e) {
  make_imgui_current();
  ImGui::GetIO().MousePos =
      ImVec2(static_cast<float>(e->position().x()), static_cast<float>(e->position().y()));
  set_modifiers(e->modifiers());
  set_mouse_button(e->button(), false);
  run_input_frame();
  poke();
  e->accept();
}

void ImGuiHost::mouseDoubleClickEvent(QMouseEvent* e) { mousePressEvent(e); }

void ImGuiHost::mouseMoveEvent(QMouseEvent* e) {
  make_imgui_current();
  ImGui::GetIO().MousePos =
      ImVec2(static_cast<float>(e->position().x()), static_cast<float>(e->position().y()));
  poke();
  e->accept();
}

void ImGuiHost::wheelEvent(QWheelEvent* e) {
  make_imgui_current();
  ImGuiIO& io = ImGui::GetIO();
  io.MousePos =
      ImVec2(static_cast<float>(e->position().x()), static_cast<float>(e->position().y()));
  // One notch = 120 eighths of a degree = 1 ImGui wheel unit.
  io.MouseWheel += static_cast<float>(e->angleDelta().y()) / 120.0f;
  io.MouseWheelH += static_cast<float>(e->angleDelta().x()) / 120.0f;
  poke();
  e->accept();
}

void ImGuiHost::key_event(QKeyEvent* e, bool down) {
  make_imgui_current();
  ImGuiIO& io = ImGui::GetIO();
  set_modifiers(e->modifiers());
  for (const auto& [imgui_key, qt_key] : kKeyTable) {
    if (e->key() == qt_key) io.KeysDown[imgui_key] = down;
  }
  if (down) {
    for (const QChar c : e->text()) {
      if (c.isPrint()) io.AddInputCharacterUTF16(c.unicode());
    }
  }
  poke();
}

void ImGuiHost::keyPressEvent(QKeyEvent* e) { key_event(e, true); }
void ImGuiHost::keyReleaseEvent(QKeyEvent* e) { key_event(e, false); }

void ImGuiHost::enterEvent(QEnterEvent* e) {
  make_imgui_current();
  ImGui::GetIO().MousePos =
      ImVec2(static_cast<float>(e->position().x()), static_cast<float>(e->position().y()));
  poke();
}

void ImGuiHost::leaveEvent(QEvent*) {
  make_imgui_current();
  ImGui::GetIO().MousePos = ImVec2(-FLT_MAX, -FLT_MAX);
  hover_timer_.stop();
  update();
}

void ImGuiHost::focusOutEvent(QFocusEvent*) {
  make_imgui_current();
  ImGuiIO& io = ImGui::GetIO();
  for (bool& k : io.KeysDown) k = false;
  io.KeyCtrl = io.KeyShift = io.KeyAlt = io.KeySuper = false;
  update();
}

}  // namespace kvwb::views
