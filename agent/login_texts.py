"""What the login prompt says, in English and French (the web page's two languages).

The English text is the key; ``FRENCH`` translates each one (a unit test checks that none is
missing). ``text(language, key, **fields)`` formats the translation, English for an unknown
language.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("en", "fr")

FRENCH: dict[str, str] = {
    "Enclume: log in to use this PC": "Enclume : connectez-vous pour utiliser ce PC",
    "Room {room}": "Salle {room}",
    "User name: ": "Nom d'utilisateur : ",
    "Password (not shown): ": "Mot de passe (masqué) : ",
    "Checking…": "Vérification…",
    "Wrong user name or password.": "Nom d'utilisateur ou mot de passe incorrect.",
    "Too many failed attempts: wait {minutes} min and try again.":
        "Trop d'essais manqués : attendez {minutes} min puis réessayez.",
    "The user directory cannot be reached: try again in a few minutes.":
        "L'annuaire des utilisateurs est injoignable : réessayez dans quelques minutes.",
    "The Enclume server cannot be reached: ask your teacher.":
        "Le serveur Enclume est injoignable : prévenez votre enseignant.",
    "The connection to the server is not secure: ask your teacher.":
        "La connexion au serveur n'est pas sécurisée : prévenez votre enseignant.",
    "Refused: {reason}": "Refusé : {reason}",
    "Your login has expired: log in again.": "Votre connexion a expiré : reconnectez-vous.",
    "Hello {user}. Class: {session}": "Bonjour {user}. Cours : {session}",
    "Hello {user}. No class is on in this room.": "Bonjour {user}. Aucun cours dans cette salle.",
    "Start fresh from {image} {version}": "Repartir de zéro avec {image} {version}",
    "Resume \"{label}\" (saved {date}, {size})":
        "Reprendre « {label} » (enregistré le {date}, {size})",
    "Maintenance: the disk starts as it is, nothing restored":
        "Maintenance : le disque démarre tel quel, sans restauration",
    "Log out": "Se déconnecter",
    "Your choice [1-{last}, 0 to log out]: ": "Votre choix [1-{last}, 0 pour se déconnecter] : ",
    "Type a number from the list.": "Tapez un numéro de la liste.",
    "Starting: {action}. The PC restarts on its own.":
        "Démarrage : {action}. Le PC redémarre tout seul.",
    "fresh start": "nouveau départ",
    "resume": "reprise",
    "maintenance": "maintenance",
    "Press Enter.": "Appuyez sur Entrée.",
}


def text(language: str, key: str, **fields: Any) -> str:
    template = FRENCH.get(key, key) if language == "fr" else key
    return template.format(**fields)
