"""English and French: the page's language is the ``enclume_lang`` cookie (the switch in the
page's header) or else the browser's Accept-Language, English by default.

The English text is the key; ``FRENCH`` gives each its translation (a unit test checks that
every text the templates and code ask for has one). Placeholders are ``str.format`` fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

LANGUAGES = {"en": "English", "fr": "Français"}
LANGUAGE_COOKIE = "enclume_lang"
Translate = Callable[..., str]

FRENCH: dict[str, str] = {
    "Enclume": "Enclume",
    ".": ",",  # the decimal mark
    "Log in": "Se connecter",
    "Log out": "Se déconnecter",
    "User name": "Nom d'utilisateur",
    "Password": "Mot de passe",
    "Wrong user name or password.": "Nom d'utilisateur ou mot de passe incorrect.",
    "The user directory cannot be reached: try again in a few minutes.":
        "L'annuaire des utilisateurs est injoignable : réessayez dans quelques minutes.",
    "Too many failed attempts: wait a few minutes and try again.":
        "Trop d'essais manqués : attendez quelques minutes avant de réessayer.",
    "Your session has expired: log in again.": "Votre session a expiré : reconnectez-vous.",
    "The form was too old or not sent by this page: try again.":
        "Le formulaire était trop ancien ou ne venait pas de cette page : réessayez.",
    "Language": "Langue",
    "Your rooms": "Vos salles",
    "All rooms": "Toutes les salles",
    "No room yet.": "Aucune salle pour l'instant.",
    "Room": "Salle",
    "Rooms": "Salles",
    "PCs": "PC",
    "Time zone": "Fuseau horaire",
    "{count} PCs": "{count} PC",
    "Not found": "Introuvable",
    "This page does not exist, or is not yours.":
        "Cette page n'existe pas, ou ne vous est pas accessible.",
    "Back to your rooms": "Retour à vos salles",
    "Select all PCs": "Sélectionner tous les PC",
    "Select {name}": "Sélectionner {name}",
    "Actions on the selected PCs": "Actions sur les PC sélectionnés",
    "Wake": "Allumer",
    "Restore": "Restaurer",
    "Power off": "Éteindre",
    "Retry the failed PCs": "Relancer les PC en échec",
    "Retry": "Relancer",
    "Image": "Image",
    "Power": "Alimentation",
    "on": "allumé",
    "off": "éteint",
    "unknown": "inconnue",
    "ready": "prêt",
    "active": "actif",
    "active on {image}": "actif sur {image}",
    "waiting to start": "en attente",
    "restoring": "restauration",
    "restoring {percent} %": "restauration {percent} %",
    "restoring {percent} % at {rate} MB/s": "restauration {percent} % à {rate} Mo/s",
    "powering on": "allumage",
    "powering off": "extinction",
    "done": "terminé",
    "failed: {reason}": "échec : {reason}",
    "failed": "échec",
    "not available ({state})": "indisponible ({state})",
    "Select at least one PC.": "Sélectionnez au moins un PC.",
    "Confirm": "Confirmer",
    "Cancel": "Annuler",
    "Wake {count} PCs of room {room}?": "Allumer {count} PC de la salle {room} ?",
    "Power off {count} PCs of room {room}?": "Éteindre {count} PC de la salle {room} ?",
    "Restore {count} PCs of room {room} with {image}?":
        "Restaurer {count} PC de la salle {room} avec {image} ?",
    "Everything on their disks is erased and replaced by the image.":
        "Tout ce qui est sur leurs disques est effacé et remplacé par l'image.",
    "Whoever is using them loses unsaved work.":
        "Le travail non enregistré de ceux qui les utilisent est perdu.",
    "A class is in progress in this room until {end} ({session}): students will lose what is "
    "on these PCs.":
        "Un cours a lieu dans cette salle jusqu'à {end} ({session}) : les élèves perdront ce "
        "qui est sur ces PC.",
    "Log out of the class network": "Déconnecter du réseau du cours",
    "Log {count} PCs of room {room} out of the class network?":
        "Déconnecter {count} PC de la salle {room} du réseau du cours ?",
    "They leave the class network and their students' logins end. Their work stays on the "
    "PCs and is saved at their next restore or power-off.":
        "Ils quittent le réseau du cours et les connexions de leurs étudiants prennent fin. "
        "Leur travail reste sur les PC et est enregistré à leur prochaine restauration ou "
        "extinction.",
    "A class is in progress in this room until {end} ({session}): its students lose the "
    "class network.":
        "Un cours a lieu dans cette salle jusqu'à {end} ({session}) : ses étudiants perdent le "
        "réseau du cours.",
    "{user} is logged out; their work is saved at the next restore or power-off.":
        "{user} est déconnecté ; son travail est enregistré à la prochaine restauration ou "
        "extinction.",
    "Started: {action} of {count} PCs.": "Lancé : {action} de {count} PC.",
    "Retried {count} failed PCs.": "{count} PC en échec relancés.",
    "No failed PC to retry.": "Aucun PC en échec à relancer.",
    "wake": "allumage",
    "restore": "restauration",
    "restore-delta": "restauration différentielle",
    "power-off": "extinction",
    "log-out": "déconnexion",
    "leaving the class network": "quitte le réseau du cours",
    "Jobs": "Actions",
    "Recent actions": "Actions récentes",
    "No action yet.": "Aucune action pour l'instant.",
    "When": "Quand",
    "Who": "Qui",
    "What": "Quoi",
    "State": "État",
    "Outcome per PC": "Résultat par PC",
    "scheduled": "planifiée",
    "pending": "en attente",
    "running": "en cours",
    "failed-partly": "échec partiel",
    "succeeded": "réussi",
    "Live updates paused: reconnecting…": "Mises à jour en pause : reconnexion…",
    "Main navigation": "Navigation principale",
    "Signed in as {user}": "Connecté en tant que {user}",
    "Timetable": "Emploi du temps",
    "Images": "Images",
    "Users": "Utilisateurs",
    "Version": "Version",
    "Added": "Ajoutée",
    "Format": "Format",
    "Boot": "Démarrage",
    "No version yet.": "Aucune version pour l'instant.",
    "No image yet.": "Aucune image pour l'instant.",
    "Authentication is off: every visitor is an administrator.":
        "L'authentification est désactivée : chaque visiteur est administrateur.",
    "Roles": "Rôles",
    "Read from the identity source; a teacher's rooms also come from the rooms' teacher lists.":
        "Lu dans la source d'identités ; les salles d'un enseignant viennent aussi des listes "
        "d'enseignants des salles.",
    "No user.": "Aucun utilisateur.",
    "Times are in the room's time zone, {zone}.":
        "Les heures sont celles du fuseau horaire de la salle, {zone}.",
    "The class is planned.": "Le cours est planifié.",
    "The session is cancelled.": "La séance est annulée.",
    "Next: the PCs are restored from {at} for {name} at {class_at}.":
        "Prochainement : les PC sont restaurés à partir de {at} pour {name} à {class_at}.",
    "Next: {name} at {class_at}.": "Prochainement : {name} à {class_at}.",
    "Nothing planned.": "Rien de prévu.",
    "Week of {day}": "Semaine du {day}",
    "Weeks": "Semaines",
    "Previous week": "Semaine précédente",
    "This week": "Cette semaine",
    "Next week": "Semaine suivante",
    "Monday": "Lundi",
    "Tuesday": "Mardi",
    "Wednesday": "Mercredi",
    "Thursday": "Jeudi",
    "Friday": "Vendredi",
    "Saturday": "Samedi",
    "Sunday": "Dimanche",
    "No class.": "Pas de cours.",
    "Plan a class": "Planifier un cours",
    "Name": "Nom",
    "Date": "Date",
    "Start": "Début",
    "End": "Fin",
    "Repeat": "Répétition",
    "Once": "Une fois",
    "Every week until": "Chaque semaine jusqu'au",
    "Last date of a weekly class": "Dernière date d'un cours hebdomadaire",
    "Before the class": "Avant le cours",
    "After the class": "Après le cours",
    "restore the PCs": "restaurer les PC",
    "power the PCs off": "éteindre les PC",
    "nothing": "rien",
    "Or import an iCalendar file (.ics) instead of the date and times":
        "Ou importer un fichier iCalendar (.ics) au lieu de la date et des heures",
    "The room's layout is saved.": "La disposition de la salle est enregistrée.",
    "row {row}, place {place}": "rangée {row}, place {place}",
    "Room layout": "Disposition de la salle",
    "The PCs are drawn in these rows and columns, row by row in the room's order. Leave both "
    "empty to fit the screen.":
        "Les PC sont dessinés dans ces rangées et colonnes, rangée par rangée dans l'ordre de la "
        "salle. Laissez les deux vides pour s'adapter à l'écran.",
    "Rows": "Rangées",
    "Columns": "Colonnes",
    "Save the layout": "Enregistrer la disposition",
    "The logins at the PCs are saved.": "Les connexions aux PC sont enregistrées.",
    "Logins at the PCs: {state} ({source}); prompt in {language} ({language_source})":
        "Connexions aux PC : {state} ({source}) ; invite en {language} ({language_source})",
    "asked": "demandées",
    "not asked": "non demandées",
    "the default": "par défaut",
    "this room's choice": "choix de cette salle",
    "When logins are asked, each PC a restore of the room reaches waits at a prompt on its "
    "screen until a student logs in and chooses to start fresh or resume their work; it moves "
    "to the class network only then. The default is the administrator's setting for every "
    "room.":
        "Quand les connexions sont demandées, chaque PC qu'une restauration de la salle atteint "
        "attend sur son écran qu'un étudiant se connecte et choisisse de repartir de zéro ou de "
        "reprendre son travail ; il ne passe qu'alors sur le réseau du cours. La valeur par "
        "défaut est le réglage de l'administrateur pour toutes les salles.",
    "Ask for a login at each PC": "Demander une connexion sur chaque PC",
    "The default ({value})": "Par défaut ({value})",
    "Yes": "Oui",
    "No": "Non",
    "Language of the prompt": "Langue de l'invite",
    "Save the logins": "Enregistrer les connexions",
    "Or import an iCalendar feed from its address (the timetable system's URL)":
        "Ou importer un flux iCalendar depuis son adresse (l'URL de l'emploi du temps)",
    "Plan": "Planifier",
    "Sessions of the room": "Séances de la salle",
    "First": "Première",
    "Next": "Suivante",
    "No session yet.": "Aucune séance pour l'instant.",
    "once": "une fois",
    "weekly": "chaque semaine",
    "ical": "iCalendar",
    "planned": "prévue",
    "claimed": "prise en charge",
    "missed": "manquée",
    "cancelled": "annulée",
}
CATALOGS: dict[str, dict[str, str]] = {"en": {}, "fr": FRENCH}


def accepted_language(header: str) -> str | None:
    """The first of our languages in an Accept-Language header, by its q weights."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            weighted.append((-quality, index, primary))
    return min(weighted)[2] if weighted else None


def language_of(request: Request) -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return str(chosen)
    return accepted_language(request.headers.get("accept-language", "")) or "en"


def translator(language: str) -> Translate:
    catalog = CATALOGS.get(language, {})

    def translate(text: str, **fields: Any) -> str:
        return catalog.get(text, text).format(**fields) if fields else catalog.get(text, text)

    return translate
