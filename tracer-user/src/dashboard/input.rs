//! Keys → commands: every key the dashboard knows, in one pure function.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::state::{Command, View};

/// The help overlay's text, kept next to the mapping it describes.
pub const KEYS: &[(&str, &str)] = &[
    ("q  Esc  Ctrl-C", "quit"),
    ("Tab", "next view"),
    ("1 2 3 4", "syscalls, threads, fds, compare"),
    (
        "Up Down  k j",
        "select a syscall (view 1) or a process (2-4)",
    ),
    ("Left Right", "select a process, in every view"),
    ("s", "cycle the sort column"),
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
        KeyCode::Char('q') | KeyCode::Esc => Command::Quit,
        KeyCode::Tab => Command::NextView,
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

    #[test]
    fn every_documented_key_does_something() {
        assert_eq!(command_for(key(KeyCode::Char('q'))), Command::Quit);
        assert_eq!(command_for(key(KeyCode::Esc)), Command::Quit);
        assert_eq!(
            command_for(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Command::Interrupt
        );
        assert_eq!(command_for(key(KeyCode::Tab)), Command::NextView);
        assert_eq!(
            command_for(key(KeyCode::Char('3'))),
            Command::ShowView(View::Fds)
        );
        assert_eq!(command_for(key(KeyCode::Down)), Command::Down);
        assert_eq!(command_for(key(KeyCode::Right)), Command::NextProcess);
        assert_eq!(command_for(key(KeyCode::Left)), Command::PrevProcess);
        assert_eq!(command_for(key(KeyCode::Char('s'))), Command::Sort);
        assert_eq!(command_for(key(KeyCode::Char('p'))), Command::Pause);
        assert_eq!(command_for(key(KeyCode::Char('r'))), Command::Reset);
        assert_eq!(command_for(key(KeyCode::Char('?'))), Command::Help);
        assert_eq!(command_for(key(KeyCode::Char('c'))), Command::Nothing);
    }
}
