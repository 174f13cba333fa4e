"""Forms of the backup admin: choose a database, upload a file, confirm a restore."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _


def database_choices() -> list[tuple[str, str]]:
    return [(alias, alias) for alias in settings.DATABASES]


class DatabaseForm(forms.Form):
    """Pick the database an operation works on; hidden when there is only one."""

    database = forms.ChoiceField(label=_("Database"), choices=())

    def __init__(self, *args: Any, initial_database: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        field = cast(forms.ChoiceField, self.fields["database"])
        field.choices = database_choices()
        if initial_database in settings.DATABASES:
            field.initial = initial_database
        else:
            field.initial = "default"
        if len(field.choices) == 1:
            field.widget = forms.HiddenInput()


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("Backup file"),
        help_text=_(
            "A file written by this app (.jsonl, .jsonl.gz or .jsonl.zst, encrypted "
            "with age or not). It is checked completely before it is kept (decrypted "
            "with the configured identities), and a damaged file, or one encrypted "
            "for a key this site does not hold, is refused. A file not "
            "made by this installation is kept as foreign: restoring it needs its "
            "own permission."
        ),
    )


class RestoreConfirmForm(forms.Form):
    """Require the database alias typed out before a restore runs."""

    confirm = forms.CharField(
        label=_("Type the name of the database to confirm"),
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args: Any, database: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.database = database

    def full_clean(self) -> None:
        super().full_clean()
        if self.is_bound and self.errors:
            # Back on the form after a refusal: the cursor goes where the error is.
            self.fields["confirm"].widget.attrs.update(
                {"autofocus": True, "aria-invalid": "true"}
            )

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"].strip()
        if value != self.database:
            raise forms.ValidationError(
                _("Type %(database)s exactly to confirm the restore."),
                code="mismatch",
                params={"database": self.database},
            )
        return value
