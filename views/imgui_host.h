#pragma once
// A QOpenGLWidget that hosts one Dear ImGui context (ImGui 1.86, rendered with the
// imgui_impl_opengl3 backend). There is no Qt platform backend, so the host feeds ImGuiIO by hand:
// DisplaySize (logical pixels), DisplayFramebufferScale (device pixel ratio), DeltaTime, MousePos,
// MouseDown[0..2], MouseWheel/MouseWheelH, modifier and navigation keys, text input.
// Frames are produced on demand, not continuously: on input events, when a subclass calls
// request_frame() (e.g. a new snapshot), and from a short timer while the mouse is inside (hover
// and tooltips). Each mouse button change is run as its own ImGui frame at once, so a press and a
// release that arrive before the next paint still make a click. Every host owns its own
// ImGuiContext; several hosts in one process do not share ImGui state.
#include <QElapsedTimer>
#include <QOpenGLWidget>
#include <QTimer>

struct ImGuiContext;
struct ImFont;

namespace kvwb::views {

class ImGuiHost : public QOpenGLWidget {
  Q_OBJECT
 public:
  explicit ImGuiHost(QWidget* parent = nullptr);
  ~ImGuiHost() override;
  ImGuiHost(const ImGuiHost&) = delete;
  ImGuiHost& operator=(const ImGuiHost&) = delete;

  /// This host's ImGui context (never shared with another host).
  ImGuiContext* imgui_context() const { return ctx_; }
  /// Frames produced so far (rendered and input-only), for tests.
  uint64_t frame_count() const { return frames_; }

  /// A larger bold font for headings (null when no TrueType font was found: use the default).
  ImFont* heading_font() const { return heading_font_; }

  /// Schedules a repaint (a new ImGui frame).
  void request_frame();

 protected:
  /// Builds the ImGui UI of one frame; called between ImGui::NewFrame and ImGui::Render with this
  /// host's context current. Must not emit signals that can re-enter the host: record commands
  /// and emit them in after_frame().
  virtual void draw_frame() {}
  /// Called after each frame has ended (context still current): emit recorded commands here.
  virtual void after_frame() {}

  void initializeGL() override;
  void paintGL() override;
  void resizeGL(int w, int h) override;

  void mousePressEvent(QMouseEvent* e) override;
  void mouseReleaseEvent(QMouseEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void mouseDoubleClickEvent(QMouseEvent* e) override;
  void wheelEvent(QWheelEvent* e) override;
  void keyPressEvent(QKeyEvent* e) override;
  void keyReleaseEvent(QKeyEvent* e) override;
  void enterEvent(QEnterEvent* e) override;
  void leaveEvent(QEvent* e) override;
  void focusOutEvent(QFocusEvent* e) override;

 private:
  void make_imgui_current() const;
  void update_io_frame_state();
  /// Runs one ImGui frame without rendering it (input-only frame), when the fonts exist.
  void run_input_frame();
  void set_mouse_button(Qt::MouseButton b, bool down);
  void set_modifiers(Qt::KeyboardModifiers m);
  void key_event(QKeyEvent* e, bool down);
  void release_gl();
  void poke();

  ImGuiContext* ctx_ = nullptr;
  ImFont* heading_font_ = nullptr;
  bool gl_ready_ = false;
  bool fonts_built_ = false;
  uint64_t frames_ = 0;
  QElapsedTimer clock_;
  qint64 last_ns_ = 0;
  QTimer hover_timer_;
  int hover_ticks_left_ = 0;
};

}  // namespace kvwb::views
