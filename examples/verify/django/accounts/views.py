from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class UserDetailView(APIView):
    permission_classes = (IsAuthenticated,)

    def get(self, request):
        # request.user.id is authex's user id (the token's sub);
        # request.auth holds every claim of the verified token.
        return Response({
            "id": request.user.id,
            "email": request.auth.get("email"),
            "name": request.auth.get("name"),
        })
