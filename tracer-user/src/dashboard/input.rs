//! Keys → commands: every key the dashboard knows, in one pure function.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::state::{Command, View};

/// The help overlay's text, kept next to the mapping it describes.
pub const KEYS: &[(&str, &str)] = &[
    ("q  Ctrl-C", "quit"),
    ("Esc", "back to the top view; quit from it"),
    ("Tab", "next view"),
    ("0 t", "top: every process, ranked"),
    ("1 2 3 4", "syscalls, threads, fds, compare"),
    ("Enter", "open the top view's process in view 1"),
    ("Up Down  k j", "select a syscall (view 1) or a process"),
    ("Left Right", "select a process, in every view"),
    ("s", "cycle the sort column (top: its ranking)"),
    ("p", "pause the display (collection goes on)"),
    ("r", "reset: count from now"),
    ("? h", "this help; any key closes it"),
];

pub fn command_for(key: KeyEvent) -> Command {
    if key.kind == KeyEventKind::Release {
        return Command::Nothing;
    }
    match key.code {
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Command::Interrupt,
        KeyCode::Char('q') => Command::Quit,
        KeyCode::Esc => Command::Back,
        KeyCode::Enter => Command::Open,
        KeyCode::Tab => Command::NextView,
        KeyCode::Char('0') | KeyCode::Char('t') => Command::ShowView(View::Top),
        KeyCode::Char('1') => Command::ShowView(View::Main),
        KeyCode::Char('2') => Command::ShowView(View::Threads),
        KeyCode::Char('3') => Command::ShowView(View::Fds),
        KeyCode::Char('4') => Command::ShowView(View::Compare),
        KeyCode::Up | KeyCode::Char('k') => Command::Up,
        KeyCode::Down | KeyCode::Char('j') => Command::Down,
        KeyCode::Left => Command::PrevProcess,
        KeyCode::Right => Command::NextProcess,
        KeyCode::Char('s') => Command::Sort,
        KeyCode::Char('p') => Command::Pause,
        KeyCode::Char('r') => Command::Reset,
        KeyCode::Char('?') | KeyCode::Char('h') => Command::Help,
        _ => Command::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    /// A key as the help overlay spells it: `q`, `Esc`, `Ctrl-C`, `Up`.
    fn parse(name: &str) -> (KeyCode, KeyModifiers) {
        if let Some(c) = name.strip_prefix("Ctrl-") {
            let (code, _) = parse(&c.to_lowercase());
            return (code, KeyModifiers::CONTROL);
        }
        let code = match name {
            "Esc" => KeyCode::Esc,
            "Enter" => KeyCode::Enter,
            "Tab" => KeyCode::Tab,
            "Up" => KeyCode::Up,
            "Down" => KeyCode::Down,
            "Left" => KeyCode::Left,
            "Right" => KeyCode::Right,
            _ => {
                let mut chars = name.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(c),
                    _ => panic!("the help overlay lists {name:?}, which this test cannot press"),
                }
            }
        };
        (code, KeyModifiers::NONE)
    }

    /// Every key the help overlay lists, with the row that lists it.
    fn documented() -> Vec<((KeyCode, KeyModifiers), &'static str)> {
        KEYS.iter()
            .flat_map(|(keys, what)| keys.split_whitespace().map(|k| (parse(k), *what)))
            .collect()
    }

    /// Every key a terminal can send that this test knows of, with and
    /// without modifiers.
    fn every_key() -> Vec<KeyEvent> {
        let mut codes: Vec<KeyCode> = (' '..='~').map(KeyCode::Char).collect();
        codes.extend((1..=12).map(KeyCode::F));
        codes.extend([
            KeyCode::Esc,
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::Enter,
            KeyCode::Backspace,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::Left,
            KeyCode::Right,
            KeyCode::Home,
            KeyCode::End,
            KeyCode::PageUp,
            KeyCode::PageDown,
            KeyCode::Insert,
            KeyCode::Delete,
            KeyCode::Null,
        ]);
        let modifiers = [
            KeyModifiers::NONE,
            KeyModifiers::SHIFT,
            KeyModifiers::ALT,
            KeyModifiers::CONTROL,
        ];
        codes
            .into_iter()
            .flat_map(|code| modifiers.map(|m| KeyEvent::new(code, m)))
            .collect()
    }

    #[test]
    fn every_documented_key_does_something() {
        let documented = documented();
        assert!(documented.len() >= KEYS.len());
        for ((code, modifiers), what) in documented {
            assert_ne!(
                command_for(KeyEvent::new(code, modifiers)),
                Command::Nothing,
                "the help overlay says {code:?} ({modifiers:?}) will {what:?}, but it does nothing"
            );
        }
    }

    #[test]
    fn every_key_that_does_something_is_documented() {
        let documented: Vec<(KeyCode, KeyModifiers)> =
            documented().into_iter().map(|(k, _)| k).collect();
        for pressed in every_key() {
            let command = command_for(pressed);
            if command == Command::Nothing {
                continue;
            }
            // A modifier that changes nothing (Shift-? is ?) needs no row.
            let as_listed = match command == command_for(key(pressed.code)) {
                true => (pressed.code, KeyModifiers::NONE),
                false => (pressed.code, pressed.modifiers),
            };
            assert!(
                documented.contains(&as_listed),
                "{pressed:?} does {command:?}, but the help overlay does not list it"
            );
        }
    }

    #[test]
    fn released_keys_and_unbound_keys_do_nothing() {
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(command_for(release), Command::Nothing);
        assert_eq!(command_for(key(KeyCode::Char('c'))), Command::Nothing);
        assert_eq!(
            command_for(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Command::Interrupt
        );
    }
}
