fn main() {
    slint_build::compile("ui/kiosk.slint").expect("the kiosk's .slint files compile");
}
